// Trainer: the data-parallel training loop of one rank.
//
// Protocol of a run (every rank runs the same steps in the same order, which
// is what keeps the collectives matched):
//   1. Build the model under torch::manual_seed(seed) and the optimizer.
//   2. Initial state (LoadInitialState, trainer_state.cc): rank 0 fetches
//      the newest checkpoint of this job when attempt > 1 (exact resume:
//      parameters, optimizer state, step, epoch, sample position, RNG), else
//      the warm_start checkpoint's parameters, else nothing; it broadcasts
//      what it got (or its error) and every rank applies the same bytes.
//      With nothing loaded, rank 0's initial parameters are broadcast.
//   3. Each step: this rank's slice of the global batch at (epoch, offset);
//      forward; backward with the Reducer averaging gradient buckets as they
//      become ready; optimizer step; offset += batch x world.
//   4. Every StopSignal check interval: allreduce a stop flag. If any rank
//      got SIGTERM/SIGUSR1, all stop after the same step, save a checkpoint
//      synchronously (trainer_state.preempted = true) and Run() returns Ok
//      with summary().preempted set (main exits 75).
//   5. Every log_every steps and at the last one: allreduce loss/accuracy,
//      rank 0 pushes the full metrics point, every rank its own step-time
//      breakdown (data, compute, exposed communication).
//   6. Every eval_every steps and at the end: evaluate on the test set
//      sharded over ranks (sums allreduced).
//   7. Every checkpoint.every_steps: every rank hands its RNG state to rank
//      0, which copies the state into a snapshot and saves it in the
//      background (AsyncCheckpointer; at most one in flight). Failures are
//      logged and published as {"checkpoint_failed": 1}; training goes on.
//   8. At the end: a synchronous final save; its outcome (shared by rank 0)
//      decides the run's result on every rank. A resumed attempt whose
//      checkpoint is already at the last step saves nothing (that version
//      is the final one).
// Run() converts LibTorch exceptions to Status; none escapes.
//
// Thread safety: one thread. Everything passed in must outlive the Trainer.
#pragma once

#include <future>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/job_spec.h"
#include "data/dataset.h"
#include "worker/async_checkpointer.h"
#include "worker/checkpoint_client.h"
#include "worker/communicator.h"
#include "worker/heartbeat.h"
#include "worker/metrics_publisher.h"
#include "worker/lr_schedule.h"
#include "model/model.h"
#include "worker/optimizer.h"
#include "worker/optimizer_state.h"
#include "worker/reducer.h"
#include "worker/sampler.h"
#include "worker/stop_signal.h"

namespace gantry::worker {

using data::TensorDataset;
using model::Model;

struct TrainerOptions {
  JobSpec spec;
  std::string job_id;
  int attempt = 1;
  const StopSignal* stop = nullptr;      // null: never stops early
  HeartbeatSender* heartbeat = nullptr;  // null: no heartbeats
  std::string data_fingerprint;          // of the files this rank loaded (data/fingerprint.h)
  // Rank 0's drift profile of the training set, already being built
  // (StartDriftProfileThread, from gantry-worker's main before MPI starts);
  // invalid: the trainer starts it itself when it saves.
  std::shared_future<torch::Tensor> drift_profile;
};

// Builds the drift profile of `train` on a thread of its own at nice 19
// (trainer_profile.cc): the uint8 tensor saved as drift::kProfileTensorName,
// undefined when it cannot be built. `clock` must outlive the thread.
std::shared_future<torch::Tensor> StartDriftProfileThread(const TensorDataset& train, const Clock& clock);

// What a finished run reached (same on every rank).
struct TrainSummary {
  int64_t steps = 0;         // optimizer steps done, counting resumed ones
  int64_t first_step = 0;    // steps already done when this attempt started
  // Measured by this attempt only; nullopt when no logging window ran (a
  // resumed attempt already at its last step). Saved metrics hold only these.
  std::optional<double> loss;      // mean over the last logging window
  std::optional<double> accuracy;  // training accuracy over the last logging window
  std::optional<double> test_loss;
  std::optional<double> test_accuracy;
  int64_t checkpoints_saved = 0;  // on rank 0; 0 elsewhere
  int64_t checkpoints_failed = 0;
  double checkpoint_stall_seconds = 0;  // rank 0: training time spent in periodic saves
  bool preempted = false;    // stopped by a signal after a checkpoint
  std::string loaded_from;   // "model@vN" resumed or warm-started from; empty if none
  // retrain.champion scored on the same held-out set before training
  // (saved with every version as champion_test_loss/_accuracy/_version).
  std::optional<double> champion_test_loss;
  std::optional<double> champion_test_accuracy;
  int64_t champion_version = 0;
};

class Trainer {
 public:
  // Evaluation batch: big enough to amortise per-call overhead, small enough
  // that activations stay a few MB.
  static constexpr int64_t kEvalBatch = 1000;
  // Steps between stop-flag agreements. Each costs one 8-byte allreduce
  // (~10-50 us with MPI on one host, docs/performance.md) against steps of
  // milliseconds; checking every step keeps a preempted job's extra work to
  // one step.
  static constexpr int64_t kStopCheckEvery = 1;

  Trainer(TrainerOptions options, TensorDataset train, TensorDataset test, Communicator& comm,
          MetricsPublisher& metrics, CheckpointStore& checkpoints, const Clock& clock);

  Status Run();
  const TrainSummary& summary() const { return summary_; }
  // Parameters and buffers by checkpoint name (after Run(): the final ones).
  NamedTensors NamedState() const;

 private:
  struct Window {  // sums since the last metrics report
    double loss_sum = 0;
    double correct = 0;
    double count = 0;
    double data_seconds = 0;
    double compute_seconds = 0;
    double comm_seconds = 0;
    int64_t steps = 0;
    std::chrono::steady_clock::time_point start;
  };

  Status RunSteps();
  Status TrainStep();
  Result<bool> StopAgreed();
  Status Report();
  Status Evaluate();
  // Mean loss and accuracy of the current parameters on the test set
  // (sharded over ranks, sums allreduced); leaves the model in eval mode.
  // With `predictions`, also the count of each predicted class over the
  // whole set (int64 [num_classes], the same on every rank).
  Result<std::pair<double, double>> EvaluateTestSet(torch::Tensor* predictions = nullptr);
  void Publish(json values);

  // trainer_state.cc
  Status LoadInitialState();
  // retrain.champion: rank 0 fetches its parameters, every rank scores them
  // on the test set, then the model gets its own parameters back.
  Status EvaluateChampion();
  Status ApplyCheckpoint(const Checkpoint& ckpt, bool resume);
  Result<Checkpoint> TakeSnapshot(bool preempted);
  static torch::Tensor SnapshotTensor(const torch::Tensor& t);
  // trainer_profile.cc: rank 0's drift profile of train_. StartDriftProfile
  // builds it on a thread of its own from the start of the run (it takes
  // rank 0 a second or two of CPU, many more when the host is busy).
  // AddDriftProfile puts it into a snapshot: the tensor when it is done,
  // else the thread's future as a deferred tensor that the saver waits for
  // off the training thread, so no rank waits for the profile in a save
  // (it is built inline if it was never started). Left out when it could
  // not be built.
  void StartDriftProfile();
  void AddDriftProfile(Checkpoint& c);
  // Periodic (async) or final/preempt (synchronous, shared outcome).
  Status SaveCheckpoint(bool final_save, bool preempted);
  // Logs and reports finished saves; the status of the save of the current
  // step, if it finished.
  std::optional<Status> CollectSaveOutcomes();
  NamedTensors NamedParameters() const;

  TrainerOptions options_;
  TensorDataset train_;
  TensorDataset test_;
  Communicator& comm_;
  MetricsPublisher& metrics_;
  CheckpointStore& checkpoints_;
  const Clock& clock_;

  std::unique_ptr<Model> model_;
  std::optional<LrSchedule> schedule_;
  double lr_ = 0;  // learning rate of the last step
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<Reducer> reducer_;
  std::optional<DistributedSampler> sampler_;
  std::unique_ptr<AsyncCheckpointer> saver_;
  torch::Tensor drift_profile_;  // the saved drift profile (rank 0), see AddDriftProfile
  // Predicted-class counts of the latest Evaluate(), saved with each version
  // as drift::kEvalPredictionsTensorName; undefined before the first.
  torch::Tensor eval_predictions_;
  bool drift_profile_built_ = false;
  std::shared_future<torch::Tensor> drift_profile_pending_;  // StartDriftProfile's thread
  bool saving_ = false;  // the same on every rank: rank 0 has a storage endpoint

  // Position: optimizer steps done, and where the next global batch starts.
  int64_t step_ = 0;
  int64_t epoch_ = 0;
  int64_t offset_ = 0;        // index into epoch_'s permutation
  int64_t samples_seen_ = 0;  // global samples consumed, over all attempts
  int64_t total_steps_ = 0;
  std::string parent_model_;  // lineage of the saves: what this run started from
  int64_t parent_version_ = 0;
  std::optional<int64_t> resumed_step_;  // the step of the checkpoint an exact resume loaded

  Window window_;
  TrainSummary summary_;
};

}  // namespace gantry::worker
