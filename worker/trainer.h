// Trainer: the data-parallel training loop of one rank.
//
// Protocol of a run (every rank runs the same steps in the same order, which
// is what keeps the collectives matched):
//   1. Build the model under torch::manual_seed(seed), then broadcast rank
//      0's parameters so all ranks start identical whatever their RNG did.
//   2. For each step: take this rank's batch from the DistributedSampler,
//      forward, backward, average gradients over ranks, optimizer step.
//   3. Every log_every steps and at the last one: allreduce the window's
//      loss/accuracy sums, log a line, and (rank 0) push a metrics point.
//   4. Every eval_every steps and at the end: evaluate on the test set
//      sharded over ranks (sums allreduced) and push test metrics.
//   5. Every checkpoint.every_steps and at the end: rank 0 saves a checkpoint.
//      A failed periodic save is logged and training goes on; a failed final
//      save fails the run on every rank (rank 0 broadcasts the outcome).
// Run() converts LibTorch exceptions to Status; none escapes.
//
// Thread safety: one thread. Everything passed in must outlive the Trainer.
#pragma once

#include <optional>
#include <string>

#include "common/clock.h"
#include "common/job_spec.h"
#include "worker/checkpoint_client.h"
#include "worker/communicator.h"
#include "worker/idx_reader.h"
#include "worker/metrics_publisher.h"
#include "worker/models.h"

namespace gantry::worker {

struct TrainerOptions {
  JobSpec spec;
  std::string job_id;
  int attempt = 1;
};

// What a finished run reached (same on every rank).
struct TrainSummary {
  int64_t steps = 0;
  double loss = 0;      // mean over the last logging window
  double accuracy = 0;  // training accuracy over the last logging window
  std::optional<double> test_loss;
  std::optional<double> test_accuracy;
  int64_t checkpoints_saved = 0;  // on rank 0; 0 elsewhere
};

class Trainer {
 public:
  // Evaluation batch: big enough to amortise per-call overhead, small enough
  // that activations stay a few MB.
  static constexpr int64_t kEvalBatch = 1000;

  Trainer(TrainerOptions options, Dataset train, Dataset test, Communicator& comm,
          MetricsPublisher& metrics, CheckpointClient& checkpoints, const Clock& clock);

  Status Run();
  const TrainSummary& summary() const { return summary_; }

 private:
  struct Window {  // sums since the last metrics report
    double loss_sum = 0;
    double correct = 0;
    double count = 0;
    double step_seconds = 0;
    int64_t steps = 0;
    std::chrono::steady_clock::time_point start;
  };

  Status RunSteps();
  Status Report(int64_t step, int64_t epoch);
  Status Evaluate(int64_t step, int64_t epoch);
  // Returns the save's outcome; the caller decides whether it is fatal.
  Status SaveCheckpoint(int64_t step, int64_t epoch);
  void Publish(int64_t step, int64_t epoch, json values);

  TrainerOptions options_;
  Dataset train_;
  Dataset test_;
  Communicator& comm_;
  MetricsPublisher& metrics_;
  CheckpointClient& checkpoints_;
  const Clock& clock_;
  torch::nn::Sequential model_{nullptr};
  int64_t total_steps_ = 0;
  Window window_;
  TrainSummary summary_;
};

}  // namespace gantry::worker
