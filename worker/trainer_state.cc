// The Trainer's checkpoint half: what a save holds, and how a run starts
// from a checkpoint (exact resume or warm start). docs/worker.md,
// "Checkpoints", has the naming.
#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "data/idx_reader.h"
#include "drift/stored_profile.h"
#include "model/checkpoint_model.h"
#include "worker/trainer.h"

namespace gantry::worker {
namespace {

using Seconds = std::chrono::duration<double>;

constexpr int kTrainerStateFormat = 1;

std::string RngName(int rank) { return "trainer/rng/cpu/rank" + std::to_string(rank); }

torch::Tensor CpuRngState() {
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void SetCpuRngState(const torch::Tensor& state) {
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

// "E<code>\n<message>": an error rank 0 met while loading, for every rank.
std::string EncodeError(const Status& st) {
  return "E" + std::string(StatusCodeName(st.code())) + "\n" + st.message();
}
Status DecodeError(const std::string& payload) {
  auto nl = payload.find('\n');
  if (nl == std::string::npos) return Status::Internal("rank 0 failed to load a checkpoint");
  return Status(StatusCodeFromName(payload.substr(1, nl - 1)), payload.substr(nl + 1));
}

}  // namespace

Status Trainer::LoadInitialState() {
  const JobSpec& spec = options_.spec;
  // 1. Rank 0 fetches: tag 'R' (resume), 'W' (warm start), 'N' (nothing),
  //    'E' (error), then the checkpoint as EncodeCheckpoint() bytes.
  std::string payload = "N";
  if (comm_.rank() == 0) {
    if (saving_ && options_.attempt > 1) {
      auto got = checkpoints_.LoadLatestOfJob(spec.checkpoint.model, options_.job_id);
      if (!got.ok()) {
        payload = EncodeError(got.status().WithContext("resuming job " + options_.job_id));
      } else if (got->has_value()) {
        auto bytes = EncodeCheckpoint(**got);
        payload = bytes.ok() ? "R" + *bytes : EncodeError(bytes.status().WithContext("resuming job " + options_.job_id));
      } else {
        spdlog::warn("attempt {}: job {} has no checkpoint under model {}; starting from scratch",
                     options_.attempt, options_.job_id, spec.checkpoint.model);
      }
    }
    if (payload == "N" && !spec.warm_start.empty()) {
      const auto at = spec.warm_start.find('@');
      const std::string model = spec.warm_start.substr(0, at);
      const std::string ref = spec.warm_start.substr(at + 1);
      auto got = checkpoints_.LoadRef(model, ref, /*model_only=*/true);
      Result<std::string> bytes = got.ok() ? EncodeCheckpoint(*got) : Result<std::string>(got.status());
      payload = bytes.ok() ? "W" + *bytes : EncodeError(bytes.status().WithContext("warm_start " + spec.warm_start));
    }
  }
  // 2. Everyone gets the same bytes, so every rank applies the same state.
  GANTRY_RETURN_IF_ERROR(BroadcastBytes(comm_, payload, 0).WithContext("sharing the initial state"));
  switch (payload[0]) {
    case 'N':
    {
      std::vector<torch::Tensor> state;
      for (auto& [name, t] : model_->StateDict()) state.push_back(t);
      return BroadcastTensors(comm_, state);
    }
    case 'E':
      return DecodeError(payload);
    case 'R':
    case 'W': {
      GANTRY_ASSIGN_OR_RETURN(Checkpoint ckpt, DecodeCheckpoint(std::string_view(payload).substr(1)));
      return ApplyCheckpoint(ckpt, payload[0] == 'R');
    }
    default:
      return Status::Internal("initial state: unknown tag from rank 0");
  }
}

Status Trainer::EvaluateChampion() {
  const std::string& ref = options_.spec.retrain.champion;
  if (ref.empty()) return Status::Ok();
  if (test_.size() == 0) {
    return Status::InvalidArgument("job spec: retrain.champion: the held-out set is empty (set data.test_file)");
  }
  // Rank 0 fetches ('C' + checkpoint bytes, or 'E' + error); all apply it.
  std::string payload;
  if (comm_.rank() == 0) {
    const auto at = ref.find('@');
    auto got = checkpoints_.LoadRef(ref.substr(0, at), ref.substr(at + 1), /*model_only=*/true);
    Result<std::string> bytes = got.ok() ? EncodeCheckpoint(*got) : Result<std::string>(got.status());
    payload = bytes.ok() ? "C" + *bytes : EncodeError(bytes.status().WithContext("retrain.champion " + ref));
  }
  GANTRY_RETURN_IF_ERROR(BroadcastBytes(comm_, payload, 0).WithContext("sharing the champion"));
  if (payload.empty() || payload[0] == 'E') return DecodeError(payload);
  GANTRY_ASSIGN_OR_RETURN(Checkpoint champion, DecodeCheckpoint(std::string_view(payload).substr(1)));
  // The run's own starting point is put back after the champion's turn.
  model::TensorMap own;
  {
    torch::NoGradGuard no_grad;
    for (const auto& [name, t] : model_->StateDict()) own[name] = t.detach().clone();
  }
  GANTRY_RETURN_IF_ERROR(model::LoadWeights(*model_, champion.tensors, champion.Source())
                             .WithContext("retrain.champion must have the job's model.*"));
  auto scores = EvaluateTestSet();
  GANTRY_RETURN_IF_ERROR(model::LoadWeights(*model_, own, "the run's initial state"));
  if (!scores.ok()) return scores.status().WithContext("scoring retrain.champion " + ref);
  summary_.champion_test_loss = scores->first;
  summary_.champion_test_accuracy = scores->second;
  summary_.champion_version = champion.version;
  spdlog::info("rank {}/{}: champion {} on the held-out set: test_loss {:.4f} test_acc {:.4f} ({} samples)",
               comm_.rank(), comm_.size(), champion.Source(), scores->first, scores->second, test_.size());
  return Status::Ok();
}

Status Trainer::ApplyCheckpoint(const Checkpoint& ckpt, bool resume) {
  const std::string source = ckpt.Source();
  // The model the job spec built must be the one the checkpoint holds.
  Status loaded = model::LoadWeights(*model_, ckpt.tensors, source);
  if (!loaded.ok()) return loaded.WithContext("check model.* and warm_start");
  parent_model_ = ckpt.model;
  parent_version_ = ckpt.version;
  summary_.loaded_from = source;
  resumed_step_ = resume ? std::optional<int64_t>(ckpt.step) : std::nullopt;
  if (!resume) {
    spdlog::info("rank {}/{}: warm start from {} (parameters only)", comm_.rank(), comm_.size(), source);
    return Status::Ok();
  }
  GANTRY_RETURN_IF_ERROR(RestoreOptimizerState(*optimizer_, NamedParameters(), ckpt.tensors));
  if (!ckpt.trainer_state) {
    return Status::Corruption("checkpoint " + source + " has no trainer_state {step, epoch, epoch_offset}");
  }
  const TrainerStateRecord& ts = *ckpt.trainer_state;
  step_ = ts.step;
  epoch_ = ts.epoch;
  offset_ = ts.epoch_offset;
  samples_seen_ = ts.samples_seen;
  if (ts.seed.value_or(options_.spec.train.seed) != options_.spec.train.seed) {
    spdlog::warn("checkpoint {} was trained with another seed: the data order changes", source);
  }
  // Same world size: each rank gets its own generator back (bit-exact).
  // Another world size: rank r takes rank r's if it exists, else rank 0's.
  auto rng = ckpt.tensors.find(RngName(comm_.rank()));
  if (rng == ckpt.tensors.end()) rng = ckpt.tensors.find(RngName(0));
  if (rng != ckpt.tensors.end()) SetCpuRngState(rng->second);
  const int64_t saved_world = ts.world_size;
  spdlog::info("rank {}/{}: resuming from {} at step {}, epoch {}, sample {} of the epoch{}", comm_.rank(),
               comm_.size(), source, step_, epoch_, offset_,
               saved_world == comm_.size() ? "" : " (saved by " + std::to_string(saved_world) + " ranks)");
  return Status::Ok();
}

// A contiguous CPU copy that training cannot change under the saver.
torch::Tensor Trainer::SnapshotTensor(const torch::Tensor& t) {
  return t.detach().to(torch::kCPU).clone(at::MemoryFormat::Contiguous);
}

Result<Checkpoint> Trainer::TakeSnapshot(bool preempted) {
  const JobSpec& spec = options_.spec;
  Checkpoint c;
  c.model = spec.checkpoint.model;
  c.job_id = options_.job_id;
  c.attempt = options_.attempt;
  c.step = step_;
  c.epoch = epoch_;
  // Only what this attempt measured: nothing when no window was reported.
  if (summary_.loss) c.metrics["loss"] = *summary_.loss;
  if (summary_.accuracy) c.metrics["accuracy"] = *summary_.accuracy;
  if (summary_.test_loss) c.metrics["test_loss"] = *summary_.test_loss;
  if (summary_.test_accuracy) c.metrics["test_accuracy"] = *summary_.test_accuracy;
  if (summary_.champion_test_accuracy) {
    c.metrics["champion_test_accuracy"] = *summary_.champion_test_accuracy;
    c.metrics["champion_test_loss"] = *summary_.champion_test_loss;
    c.metrics["champion_version"] = static_cast<double>(summary_.champion_version);
  }
  c.job_name = spec.name;
  c.world_size = comm_.size();
  model::ModelManifest& m = c.manifest;
  m.description = model_->Describe();
  m.builtin = spec.model.torchscript.empty() ? spec.model.builtin : "torchscript";
  m.hidden = spec.model.hidden;
  m.torchscript = spec.model.torchscript;
  m.input_shape = model_->InputShape().value_or(train_.SampleShape());
  m.num_classes = train_.num_classes;
  // IDX images are normalised with fixed statistics (idx_reader.h); whoever
  // serves this model must do the same.
  if (train_.features.dim() == 4) m.normalize = model::Normalization{data::kPixelMean, data::kPixelStd};
  TrainerStateRecord ts;
  ts.format = kTrainerStateFormat;
  ts.step = step_;
  ts.epoch = epoch_;
  ts.epoch_offset = offset_;
  ts.samples_seen = samples_seen_;
  ts.world_size = comm_.size();
  ts.batch_size = spec.train.batch_size;
  ts.seed = spec.train.seed;
  ts.preempted = preempted;
  c.trainer_state = ts;
  c.optimizer = OptimizerRecord{spec.train.optimizer.name, spec.train.optimizer.lr, spec.train.optimizer.momentum,
                                spec.train.optimizer.weight_decay};
  c.data_fingerprint = options_.data_fingerprint;
  if (parent_version_ > 0) {
    c.parent_model = parent_model_;
    c.parent_version = parent_version_;
  }
  try {
    for (const auto& [name, t] : NamedState()) c.tensors[name] = SnapshotTensor(t);
    GANTRY_ASSIGN_OR_RETURN(NamedTensors optim, SaveOptimizerState(*optimizer_, NamedParameters()));
    for (const auto& [name, t] : optim) c.tensors[name] = SnapshotTensor(t);
    AddDriftProfile(c);
    if (eval_predictions_.defined()) c.tensors[drift::kEvalPredictionsTensorName] = SnapshotTensor(eval_predictions_);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("checkpoint: copying the training state: ") + e.what());
  }
  return c;
}

Status Trainer::SaveCheckpoint(bool final_save, bool preempted) {
  if (!saving_) return Status::Ok();
  const auto t0 = clock_.Now();
  // 1. Every rank's RNG state travels to rank 0 (a broadcast from each).
  std::vector<torch::Tensor> rng(static_cast<size_t>(comm_.size()));
  const torch::Tensor mine = CpuRngState();
  for (int r = 0; r < comm_.size(); ++r) {
    torch::Tensor t = r == comm_.rank() ? mine.clone() : torch::empty_like(mine);
    GANTRY_RETURN_IF_ERROR(comm_.Broadcast(t, r).WithContext("gathering RNG states"));
    rng[static_cast<size_t>(r)] = t;
  }
  // 2. Rank 0 snapshots and hands the snapshot to the saver; the save's
  //    own outcome comes back through CollectSaveOutcomes().
  Status outcome;
  if (comm_.rank() == 0) {
    auto snap = TakeSnapshot(preempted);
    if (snap.ok()) {
      // Fresh tensors (a clone or a broadcast target): no copy needed.
      for (int r = 0; r < comm_.size(); ++r) snap->tensors[RngName(r)] = rng[static_cast<size_t>(r)];
    } else {
      outcome = snap.status();
    }
    if (outcome.ok()) {
      (void)saver_->Submit(std::move(snap).value());
      if (final_save) {
        // Waits out a storage restart (retrying) up to the spec's limit,
        // then fails the attempt naming storage; the job is requeued.
        const auto limit = std::chrono::milliseconds(
            static_cast<int64_t>(options_.spec.checkpoint.final_save_timeout * 1000));
        Status finished = saver_->Finish(limit);
        outcome = CollectSaveOutcomes().value_or(Status::Internal("the final save left no outcome"));
        if (!finished.ok()) outcome = finished;
      }
    } else {  // no snapshot: reported like a failed save
      spdlog::error("checkpoint at step {} failed: {}", step_, outcome.ToString());
      ++summary_.checkpoints_failed;
      Publish({{"checkpoint_failed", 1}, {"checkpoint_step", step_}});
    }
    if (!final_save) summary_.checkpoint_stall_seconds += Seconds(clock_.Now() - t0).count();
  }
  if (!final_save) return Status::Ok();  // a periodic failure never stops training
  // 3. The final (or preemption) save decides the run's outcome on every rank.
  torch::Tensor flag = torch::tensor({outcome.ok() ? int64_t{0} : int64_t{1}}, torch::kInt64);
  GANTRY_RETURN_IF_ERROR(comm_.Broadcast(flag, 0));
  if (!outcome.ok()) return outcome;
  if (flag.item<int64_t>() != 0) return Status::Aborted("rank 0 failed to save the checkpoint");
  return Status::Ok();
}

std::optional<Status> Trainer::CollectSaveOutcomes() {
  std::optional<Status> current;
  if (!saver_) return current;
  for (auto& o : saver_->TakeFinished()) {
    if (o.will_retry) {  // kept in memory and retried: not (yet) a failure
      spdlog::warn("checkpoint at step {}: storage unavailable ({}); kept, retrying until storage is back", o.step,
                   o.status.message());
      continue;
    }
    if (o.status.ok()) {
      ++summary_.checkpoints_saved;
      spdlog::info("checkpoint saved: {} v{} (step {}, {:.3f} s in storage)", o.saved.model, o.saved.version,
                   o.step, o.seconds);
    } else {
      ++summary_.checkpoints_failed;
      spdlog::error("checkpoint at step {} failed: {}", o.step, o.status.ToString());
      // An alert-worthy event for the monitor, never a silent drop.
      Publish({{"checkpoint_failed", 1}, {"checkpoint_step", o.step}});
    }
    if (o.step == step_) current = o.status;
  }
  return current;
}

}  // namespace gantry::worker
