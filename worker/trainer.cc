#include "worker/trainer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cmath>

#include "worker/gradient_averager.h"
#include "worker/sampler.h"

namespace gantry::worker {
namespace {

using Seconds = std::chrono::duration<double>;

torch::Tensor Indices(const std::vector<int64_t>& v) {
  return torch::tensor(torch::ArrayRef<int64_t>(v), torch::kInt64);
}

}  // namespace

Trainer::Trainer(TrainerOptions options, Dataset train, Dataset test, Communicator& comm,
                 MetricsPublisher& metrics, CheckpointClient& checkpoints, const Clock& clock)
    : options_(std::move(options)), train_(std::move(train)), test_(std::move(test)),
      comm_(comm), metrics_(metrics), checkpoints_(checkpoints), clock_(clock) {}

Status Trainer::Run() {
  try {
    return RunSteps();
  } catch (const c10::Error& e) {
    return Status::Internal(std::string("LibTorch: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::Internal(std::string("training: ") + e.what());
  }
}

Status Trainer::RunSteps() {
  const JobSpec& spec = options_.spec;
  const int64_t batch = spec.train.batch_size;
  torch::manual_seed(spec.train.seed);
  GANTRY_ASSIGN_OR_RETURN(model_, BuildModel(spec.model, train_.images.size(2), train_.images.size(3)));
  GANTRY_RETURN_IF_ERROR(BroadcastParameters(comm_, *model_));
  GANTRY_ASSIGN_OR_RETURN(auto optimizer, BuildOptimizer(spec.train.optimizer, model_->parameters()));
  GradientAverager averager(comm_, model_->parameters());
  GANTRY_ASSIGN_OR_RETURN(auto sampler, DistributedSampler::Create(train_.size(), batch, comm_.rank(),
                                                                   comm_.size(), spec.train.seed));
  const int64_t per_epoch = sampler.steps_per_epoch();
  total_steps_ = spec.train.steps > 0 ? spec.train.steps : spec.train.epochs * per_epoch;
  spdlog::info("rank {}/{}: job {} attempt {}: {} {} ({} parameters), {} train / {} test samples, "
               "batch {} per rank, {} steps ({} per epoch)",
               comm_.rank(), comm_.size(), options_.job_id, options_.attempt, spec.model.builtin,
               spec.train.optimizer.name, averager.numel(), train_.size(), test_.size(), batch,
               total_steps_, per_epoch);

  model_->train();
  window_ = Window{};
  window_.start = clock_.Now();
  for (int64_t step = 1; step <= total_steps_; ++step) {
    const int64_t epoch = (step - 1) / per_epoch;
    auto t0 = clock_.Now();
    torch::Tensor idx = Indices(sampler.Batch(epoch, (step - 1) % per_epoch));
    torch::Tensor x = train_.images.index_select(0, idx);
    torch::Tensor y = train_.labels.index_select(0, idx);
    optimizer->zero_grad();
    torch::Tensor logits = model_->forward(x);
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits, y);
    loss.backward();
    GANTRY_RETURN_IF_ERROR(averager.Average());
    optimizer->step();

    window_.loss_sum += loss.item<double>() * static_cast<double>(batch);
    window_.correct += logits.argmax(1).eq(y).sum().item<double>();
    window_.count += static_cast<double>(batch);
    window_.step_seconds += Seconds(clock_.Now() - t0).count();
    ++window_.steps;

    const bool last = step == total_steps_;
    if (step % spec.train.log_every == 0 || last) GANTRY_RETURN_IF_ERROR(Report(step, epoch));
    if (last || (spec.train.eval_every > 0 && step % spec.train.eval_every == 0)) {
      GANTRY_RETURN_IF_ERROR(Evaluate(step, epoch));
      model_->train();
    }
    if (!last && spec.checkpoint.every_steps > 0 && step % spec.checkpoint.every_steps == 0) {
      if (Status st = SaveCheckpoint(step, epoch); !st.ok()) {
        spdlog::error("periodic checkpoint at step {} failed (training continues): {}", step,
                      st.ToString());
      }
    }
  }
  summary_.steps = total_steps_;

  // The final save decides the run's outcome on every rank, so rank 0 shares it.
  Status final_save = SaveCheckpoint(total_steps_, (total_steps_ - 1) / per_epoch);
  torch::Tensor outcome = torch::tensor({final_save.ok() ? int64_t{0} : int64_t{1}}, torch::kInt64);
  GANTRY_RETURN_IF_ERROR(comm_.Broadcast(outcome, 0));
  if (!final_save.ok()) return final_save.WithContext("final checkpoint");
  if (outcome.item<int64_t>() != 0) return Status::Aborted("rank 0 failed to save the final checkpoint");
  return Status::Ok();
}

Status Trainer::Report(int64_t step, int64_t epoch) {
  torch::Tensor sums = torch::tensor(
      {window_.loss_sum, window_.correct, window_.count, window_.step_seconds,
       static_cast<double>(window_.steps)},
      torch::kFloat64);
  GANTRY_RETURN_IF_ERROR(comm_.AllreduceSum(sums).WithContext("reducing metrics"));
  auto s = sums.accessor<double, 1>();
  const double elapsed = std::max(Seconds(clock_.Now() - window_.start).count(), 1e-9);
  summary_.loss = s[0] / s[2];
  summary_.accuracy = s[1] / s[2];
  const double samples_per_sec = s[2] / elapsed;
  const double step_time = s[3] / s[4];
  spdlog::info("rank {}/{} step {}/{} epoch {} loss {:.4f} acc {:.4f} {:.0f} samples/s", comm_.rank(),
               comm_.size(), step, total_steps_, epoch, summary_.loss, summary_.accuracy,
               samples_per_sec);
  Publish(step, epoch,
          {{"loss", summary_.loss},
           {"accuracy", summary_.accuracy},
           {"samples_per_sec", samples_per_sec},
           {"lr", options_.spec.train.optimizer.lr},
           {"step_time", step_time}});
  window_ = Window{};
  window_.start = clock_.Now();
  return Status::Ok();
}

Status Trainer::Evaluate(int64_t step, int64_t epoch) {
  torch::NoGradGuard no_grad;
  model_->eval();
  const int64_t n = test_.size();
  const int64_t begin = n * comm_.rank() / comm_.size();
  const int64_t end = n * (comm_.rank() + 1) / comm_.size();
  double loss_sum = 0;
  double correct = 0;
  for (int64_t i = begin; i < end; i += kEvalBatch) {
    const int64_t len = std::min(kEvalBatch, end - i);
    torch::Tensor x = test_.images.narrow(0, i, len);
    torch::Tensor y = test_.labels.narrow(0, i, len);
    torch::Tensor logits = model_->forward(x);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    correct += logits.argmax(1).eq(y).sum().item<double>();
  }
  torch::Tensor sums = torch::tensor({loss_sum, correct, static_cast<double>(end - begin)}, torch::kFloat64);
  GANTRY_RETURN_IF_ERROR(comm_.AllreduceSum(sums).WithContext("reducing evaluation"));
  auto s = sums.accessor<double, 1>();
  if (s[2] <= 0) return Status::InvalidArgument("evaluation: the test set is empty");
  summary_.test_loss = s[0] / s[2];
  summary_.test_accuracy = s[1] / s[2];
  spdlog::info("rank {}/{} eval step {} test_loss {:.4f} test_acc {:.4f} ({} samples)", comm_.rank(),
               comm_.size(), step, *summary_.test_loss, *summary_.test_accuracy, s[2]);
  Publish(step, epoch, {{"test_loss", *summary_.test_loss}, {"test_accuracy", *summary_.test_accuracy}});
  return Status::Ok();
}

Status Trainer::SaveCheckpoint(int64_t step, int64_t epoch) {
  if (comm_.rank() != 0 || !checkpoints_.enabled()) return Status::Ok();
  const JobSpec& spec = options_.spec;
  CheckpointRequest req;
  req.model = spec.checkpoint.model;
  req.job_id = options_.job_id;
  req.attempt = options_.attempt;
  req.step = step;
  req.epoch = epoch;
  req.metrics = {{"loss", summary_.loss}, {"accuracy", summary_.accuracy}};
  if (summary_.test_accuracy) {
    req.metrics["test_accuracy"] = *summary_.test_accuracy;
    req.metrics["test_loss"] = *summary_.test_loss;
  }
  req.meta = {{"job_name", spec.name},
              {"world_size", comm_.size()},
              {"model_builtin", spec.model.builtin},
              {"model_hidden", spec.model.hidden},
              {"input_shape", {1, train_.images.size(2), train_.images.size(3)}},
              {"normalize", {{"mean", kPixelMean}, {"std", kPixelStd}}}};
  auto saved = checkpoints_.Save(req, *model_);
  if (!saved.ok()) return saved.status();
  ++summary_.checkpoints_saved;
  spdlog::info("checkpoint saved: {} v{} (step {})", saved->model, saved->version, step);
  return Status::Ok();
}

void Trainer::Publish(int64_t step, int64_t epoch, json values) {
  if (!metrics_.enabled()) return;
  MetricsPoint p;
  p.step = step;
  p.total_steps = total_steps_;
  p.epoch = epoch;
  p.time = clock_.WallSeconds();
  p.values = std::move(values);
  metrics_.Publish(p);
}

}  // namespace gantry::worker
