#include "worker/trainer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cmath>
#include <mutex>

namespace gantry::worker {
namespace {

using Seconds = std::chrono::duration<double>;

torch::Tensor Indices(const std::vector<int64_t>& v) {
  return torch::tensor(torch::ArrayRef<int64_t>(v), torch::kInt64);
}

// Where the model and each batch live: resources.device as main() resolved
// it ("cpu", or this rank's "cuda:N"; a bare "cuda" is the current device).
// The data stays on the CPU; each batch is copied over when it is used.
torch::Device TrainDevice(const JobSpec& spec) { return torch::Device(spec.resources.device); }

torch::Tensor OnDevice(const torch::Tensor& t, const torch::Device& device) {
  return device.is_cpu() ? t : t.to(device);
}

}  // namespace

Trainer::Trainer(TrainerOptions options, TensorDataset train, TensorDataset test, Communicator& comm,
                 MetricsPublisher& metrics, CheckpointStore& checkpoints, const Clock& clock)
    : options_(std::move(options)), train_(std::move(train)), test_(std::move(test)),
      comm_(comm), metrics_(metrics), checkpoints_(checkpoints), clock_(clock) {}

Status Trainer::Run() {
  try {
    Status st = RunSteps();
    // Whatever happened, no save may be left running against freed state.
    if (saver_) saver_->Flush();
    return st;
  } catch (const c10::Error& e) {
    return Status::Internal(std::string("LibTorch: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::Internal(std::string("training: ") + e.what());
  }
}

NamedTensors Trainer::NamedParameters() const { return model_->NamedParameters(); }

// PyTorch's state_dict order, so an export loads with load_state_dict().
NamedTensors Trainer::NamedState() const { return model_->StateDict(); }

Status Trainer::RunSteps() {
  const JobSpec& spec = options_.spec;
  // Ranks that loaded different data (a shard landed between their reads)
  // would train different problems: refuse before the first step.
  std::string fp = options_.data_fingerprint;
  GANTRY_RETURN_IF_ERROR(BroadcastBytes(comm_, fp, 0).WithContext("sharing the data fingerprint"));
  if (fp != options_.data_fingerprint) {
    return Status::FailedPrecondition("rank " + std::to_string(comm_.rank()) + " loaded other data than rank 0 (" +
                                      "fingerprint " + options_.data_fingerprint + " vs " + fp + "); rerun the job");
  }
  const torch::Device device = TrainDevice(spec);
  if (device.is_cuda() && !torch::cuda::is_available()) {
    return Status::FailedPrecondition(
        "resources.device is " + spec.resources.device + " but LibTorch sees no CUDA device: this "
        "gantry-worker was built against a LibTorch without CUDA (Debian's libtorch is CPU-only; build "
        "against a CUDA LibTorch, see scripts/build-cuda.sh), or no GPU is visible to it");
  }
  {
    // LibTorch's default CPU generator is process-wide: ranks that run as
    // threads (tests, benchmarks) must not interleave seeding and parameter
    // initialisation, or rank 0's initial parameters depend on timing.
    static std::mutex init_mu;
    std::lock_guard<std::mutex> lock(init_mu);
    torch::manual_seed(spec.train.seed);
    GANTRY_ASSIGN_OR_RETURN(model_, model::CreateModel(spec.model, train_.SampleShape(), train_.num_classes));
  }
  // Before the optimizer sees the parameters and the Reducer sizes its
  // buckets: both keep the tensors they are given. (CreateModel's shape check
  // ran on the CPU.) Rank 0's values still reach the others below.
  if (!device.is_cpu()) GANTRY_RETURN_IF_ERROR(model_->To(device));
  if (auto shape = model_->InputShape()) {
    GANTRY_RETURN_IF_ERROR(train_.ViewSamplesAs(*shape));
    GANTRY_RETURN_IF_ERROR(test_.ViewSamplesAs(*shape));
  }
  GANTRY_ASSIGN_OR_RETURN(optimizer_, BuildOptimizer(spec.train.optimizer, model_->Parameters()));
  GANTRY_ASSIGN_OR_RETURN(schedule_, LrSchedule::Create(spec.train.lr_schedule, spec.train.optimizer.lr));
  lr_ = schedule_->At(0, 1);
  GANTRY_ASSIGN_OR_RETURN(auto sampler, DistributedSampler::Create(train_.size(), spec.train.batch_size,
                                                                   comm_.rank(), comm_.size(), spec.train.seed));
  sampler_.emplace(std::move(sampler));
  // Saving involves every rank (RNG states travel to rank 0), so all ranks
  // must agree whether it happens: rank 0, which holds the endpoint, decides.
  torch::Tensor saving = torch::tensor({checkpoints_.enabled() ? int64_t{1} : int64_t{0}}, torch::kInt64);
  GANTRY_RETURN_IF_ERROR(comm_.Broadcast(saving, 0));
  saving_ = saving.item<int64_t>() != 0;
  if (saving_ && comm_.rank() == 0) StartDriftProfile();
  GANTRY_RETURN_IF_ERROR(LoadInitialState());
  GANTRY_RETURN_IF_ERROR(EvaluateChampion());

  const int64_t per_epoch = sampler_->steps_per_epoch();
  if (spec.train.steps > 0) {
    total_steps_ = std::max(spec.train.steps, step_);
  } else {
    int64_t left = 0;
    if (epoch_ < spec.train.epochs) {
      left = std::max<int64_t>(0, (sampler_->num_samples() - offset_) / sampler_->global_batch()) +
             (spec.train.epochs - epoch_ - 1) * per_epoch;
    }
    total_steps_ = step_ + left;
  }
  const double bucket_mb = spec.train.bucket_mb;
  Reducer::Options ropt;
  if (bucket_mb > 0) ropt.bucket_bytes = std::max<int64_t>(1, static_cast<int64_t>(bucket_mb * (1 << 20)));
  ropt.overlap = spec.train.overlap;
  GANTRY_ASSIGN_OR_RETURN(reducer_, Reducer::Create(comm_, model_->Parameters(), ropt));
  saver_ = std::make_unique<AsyncCheckpointer>(
      checkpoints_, AsyncCheckpointerOptions{.async = spec.checkpoint.async, .clock = &clock_});
  summary_.first_step = step_;
  spdlog::info("rank {}/{}: job {} attempt {}: {} {} ({} parameters in {} buckets, overlap {}), "
               "{} train / {} test samples, batch {} per rank, steps {}..{} ({} per epoch){}",
               comm_.rank(), comm_.size(), options_.job_id, options_.attempt, spec.model.builtin,
               spec.train.optimizer.name, reducer_->numel(), reducer_->num_buckets(),
               ropt.overlap ? "on" : "off", train_.size(), test_.size(), spec.train.batch_size, step_ + 1,
               total_steps_, per_epoch,
               summary_.loaded_from.empty() ? "" : ", from " + summary_.loaded_from);

  model_->SetTraining(true);
  window_ = Window{};
  window_.start = clock_.Now();
  bool evaluated = false;
  while (step_ < total_steps_) {
    GANTRY_RETURN_IF_ERROR(TrainStep());
    if (options_.heartbeat != nullptr) options_.heartbeat->SetStep(step_);
    const bool last = step_ == total_steps_;
    if (!last && step_ % kStopCheckEvery == 0) {
      GANTRY_ASSIGN_OR_RETURN(bool stop, StopAgreed());
      if (stop) {
        spdlog::warn("rank {}/{}: stop requested; all ranks stop after step {} and checkpoint",
                     comm_.rank(), comm_.size(), step_);
        summary_.steps = step_;
        summary_.preempted = true;
        return SaveCheckpoint(/*final_save=*/true, /*preempted=*/true).WithContext("preemption checkpoint");
      }
    }
    if (step_ % spec.train.log_every == 0 || last) GANTRY_RETURN_IF_ERROR(Report());
    if (last || (spec.train.eval_every > 0 && step_ % spec.train.eval_every == 0)) {
      GANTRY_RETURN_IF_ERROR(Evaluate());
      evaluated = last;
      model_->SetTraining(true);
    }
    if (!last && spec.checkpoint.every_steps > 0 && step_ % spec.checkpoint.every_steps == 0) {
      GANTRY_RETURN_IF_ERROR(SaveCheckpoint(/*final_save=*/false, /*preempted=*/false));
    }
    CollectSaveOutcomes();
  }
  summary_.steps = step_;
  if (!evaluated) GANTRY_RETURN_IF_ERROR(Evaluate());  // resumed at the end: nothing ran
  if (resumed_step_ == step_) {  // the same on every rank (broadcast state)
    if (comm_.rank() == 0) {
      spdlog::info("job {} attempt {}: resumed from {} already at the last step {}; no new checkpoint version",
                   options_.job_id, options_.attempt, summary_.loaded_from, step_);
    }
    return Status::Ok();
  }
  return SaveCheckpoint(/*final_save=*/true, /*preempted=*/false).WithContext("final checkpoint");
}

Status Trainer::TrainStep() {
  const auto t0 = clock_.Now();
  if (!sampler_->HasBatchAt(offset_)) {  // the tail that does not fill a global batch is dropped
    ++epoch_;
    offset_ = 0;
  }
  const torch::Device device = TrainDevice(options_.spec);
  torch::Tensor idx = Indices(sampler_->BatchAt(epoch_, offset_));
  torch::Tensor x = OnDevice(train_.features.index_select(0, idx), device);
  torch::Tensor y = OnDevice(train_.labels.index_select(0, idx), device);
  const auto t1 = clock_.Now();
  optimizer_->zero_grad();
  reducer_->Prepare();
  GANTRY_ASSIGN_OR_RETURN(torch::Tensor logits, model_->Forward(x));
  torch::Tensor loss = torch::nn::functional::cross_entropy(logits, y);
  loss.backward();
  GANTRY_RETURN_IF_ERROR(reducer_->Finalize());
  // The schedule is a function of the step, so a resumed run continues it.
  lr_ = schedule_->Apply(*optimizer_, step_ + 1, total_steps_);
  optimizer_->step();
  const auto t2 = clock_.Now();
  offset_ += sampler_->global_batch();
  samples_seen_ += sampler_->global_batch();
  ++step_;

  const double batch = static_cast<double>(x.size(0));
  const double comm = reducer_->last_step().wait_seconds;
  window_.loss_sum += loss.item<double>() * batch;
  window_.correct += logits.argmax(1).eq(y).sum().item<double>();
  window_.count += batch;
  window_.data_seconds += Seconds(t1 - t0).count();
  window_.comm_seconds += comm;
  window_.compute_seconds += std::max(0.0, Seconds(t2 - t1).count() - comm);
  ++window_.steps;
  return Status::Ok();
}

Result<bool> Trainer::StopAgreed() {
  const bool mine = options_.stop != nullptr && options_.stop->requested() != 0;
  torch::Tensor flag = torch::tensor({mine ? int64_t{1} : int64_t{0}}, torch::kInt64);
  const auto t0 = clock_.Now();
  GANTRY_RETURN_IF_ERROR(comm_.AllreduceSum(flag).WithContext("agreeing on a stop"));
  window_.comm_seconds += Seconds(clock_.Now() - t0).count();
  return flag.item<int64_t>() > 0;
}

Status Trainer::Report() {
  torch::Tensor sums = torch::tensor({window_.loss_sum, window_.correct, window_.count}, torch::kFloat64);
  GANTRY_RETURN_IF_ERROR(comm_.AllreduceSum(sums).WithContext("reducing metrics"));
  auto s = sums.accessor<double, 1>();
  const double elapsed = std::max(Seconds(clock_.Now() - window_.start).count(), 1e-9);
  const double steps = static_cast<double>(std::max<int64_t>(1, window_.steps));
  summary_.loss = s[0] / s[2];
  summary_.accuracy = s[1] / s[2];
  // This rank's own timing: a straggler shows as one rank's larger step_time.
  json values = {{"step_time", (window_.data_seconds + window_.compute_seconds + window_.comm_seconds) / steps},
                 {"data_time", window_.data_seconds / steps},
                 {"compute_time", window_.compute_seconds / steps},
                 {"comm_time", window_.comm_seconds / steps}};
  const double samples_per_sec = s[2] / elapsed;
  if (comm_.rank() == 0) {
    values["loss"] = *summary_.loss;
    values["accuracy"] = *summary_.accuracy;
    values["samples_per_sec"] = samples_per_sec;
    values["lr"] = lr_;
  } else {
    values["samples_per_sec"] = window_.count / elapsed;
  }
  spdlog::info("rank {}/{} step {}/{} epoch {} loss {:.4f} acc {:.4f} {:.0f} samples/s, step {:.2f} ms "
               "(data {:.2f}, compute {:.2f}, comm {:.2f})",
               comm_.rank(), comm_.size(), step_, total_steps_, epoch_, *summary_.loss, *summary_.accuracy,
               samples_per_sec, values["step_time"].get<double>() * 1e3, values["data_time"].get<double>() * 1e3,
               values["compute_time"].get<double>() * 1e3, values["comm_time"].get<double>() * 1e3);
  Publish(std::move(values));
  window_ = Window{};
  window_.start = clock_.Now();
  return Status::Ok();
}

Status Trainer::Evaluate() {
  // Shards without data.test_file: nothing to evaluate (same on every rank).
  if (test_.size() == 0) return Status::Ok();
  GANTRY_ASSIGN_OR_RETURN(auto scores, EvaluateTestSet(&eval_predictions_));
  summary_.test_loss = scores.first;
  summary_.test_accuracy = scores.second;
  spdlog::info("rank {}/{} eval step {} test_loss {:.4f} test_acc {:.4f} ({} samples)", comm_.rank(),
               comm_.size(), step_, *summary_.test_loss, *summary_.test_accuracy, test_.size());
  if (comm_.rank() == 0) Publish({{"test_loss", *summary_.test_loss}, {"test_accuracy", *summary_.test_accuracy}});
  return Status::Ok();
}

Result<std::pair<double, double>> Trainer::EvaluateTestSet(torch::Tensor* predictions) {
  torch::NoGradGuard no_grad;
  model_->SetTraining(false);
  const int64_t n = test_.size();
  const int64_t begin = n * comm_.rank() / comm_.size();
  const int64_t end = n * (comm_.rank() + 1) / comm_.size();
  const int64_t classes = std::max<int64_t>(test_.num_classes, 1);
  double loss_sum = 0;
  double correct = 0;
  // Counts travel as float64 with the sums: exact below 2^53 samples.
  torch::Tensor predicted = torch::zeros({classes}, torch::kFloat64);
  const torch::Device device = TrainDevice(options_.spec);
  for (int64_t i = begin; i < end; i += kEvalBatch) {
    const int64_t len = std::min(kEvalBatch, end - i);
    torch::Tensor x = OnDevice(test_.features.narrow(0, i, len), device);
    torch::Tensor y = OnDevice(test_.labels.narrow(0, i, len), device);
    GANTRY_ASSIGN_OR_RETURN(torch::Tensor logits, model_->Forward(x));
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    const torch::Tensor argmax = logits.argmax(1);
    correct += argmax.eq(y).sum().item<double>();
    if (predictions != nullptr) {
      const torch::Tensor counts = torch::bincount(argmax.to(torch::kCPU), {}, classes).to(torch::kFloat64);
      predicted.narrow(0, 0, std::min(classes, counts.size(0))) += counts.narrow(0, 0, std::min(classes, counts.size(0)));
    }
  }
  torch::Tensor sums = torch::cat({torch::tensor({loss_sum, correct, static_cast<double>(end - begin)}, torch::kFloat64),
                                   predicted});
  GANTRY_RETURN_IF_ERROR(comm_.AllreduceSum(sums).WithContext("reducing evaluation"));
  auto s = sums.accessor<double, 1>();
  if (s[2] <= 0) return Status::InvalidArgument("evaluation: the test set is empty");
  if (predictions != nullptr) *predictions = sums.narrow(0, 3, classes).round().to(torch::kInt64).contiguous();
  return std::make_pair(s[0] / s[2], s[1] / s[2]);
}

void Trainer::Publish(json values) {
  if (!metrics_.enabled()) return;
  MetricsPoint p;
  p.step = step_;
  p.total_steps = total_steps_;
  p.epoch = epoch_;
  p.time = clock_.WallSeconds();
  p.values = std::move(values);
  metrics_.Publish(p);
}

}  // namespace gantry::worker
