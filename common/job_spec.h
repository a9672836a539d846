// Job specification: what `gantry submit` sends and a worker runs.
//
// Written as YAML by users (configs/jobs/*.yaml), carried as JSON on the
// wire and in the coordinator's database. Parse() checks types, ranges and
// unknown fields and names the offending field path; CheckFiles() checks
// that the data exists where the spec runs (the coordinator's host).
// docs/jobs.md documents every field.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/protocol.h"

namespace gantry {

struct ModelSpec {
  std::string builtin = "mlp";        // mlp | cnn
  std::vector<int64_t> hidden = {256, 128};  // mlp hidden layer widths
  std::string torchscript;            // path to a TorchScript module (issue 4)
};

struct DataSpec {
  // idx: IDX image/label files below. csv: train_file/test_file, numeric
  // features and a label column. shards: `path` is a directory of shards
  // (CSV files or IDX image/label pairs) that may grow between runs.
  std::string format = "idx";
  std::string path;            // directory holding the files below
  std::string train_images = "train-images-idx3-ubyte.gz";
  std::string train_labels = "train-labels-idx1-ubyte.gz";
  std::string test_images = "t10k-images-idx3-ubyte.gz";
  std::string test_labels = "t10k-labels-idx1-ubyte.gz";
  std::string train_file;      // csv: training CSV, relative to path
  std::string test_file;       // csv/shards: held-out CSV for evaluation (optional for shards)
  std::string label_column = "label";  // csv/shards: name of the label column
  int64_t limit = 0;  // use only the first N training samples (0 = all)
};

struct ResourceSpec {
  int workers = 1;           // MPI ranks
  int slots_per_worker = 1;  // slots (cores or GPUs) each rank occupies
  std::string device = "cpu";  // cpu | cuda
};

struct OptimizerSpec {
  std::string name = "sgd";  // sgd | adam | adamw
  double lr = 0.05;
  double momentum = 0.9;
  double weight_decay = 0.0;
};

struct LrScheduleSpec {
  std::string name = "constant";  // constant | step | cosine
  int64_t warmup_steps = 0;       // linear ramp from 0 to lr over these steps
  int64_t step_size = 0;          // step: multiply by gamma every step_size steps
  double gamma = 0.1;
  double min_lr = 0.0;            // cosine: floor at the end of training
};

struct TrainSpec {
  int64_t epochs = 1;       // used when steps == 0
  int64_t steps = 0;        // optimizer steps; 0 = derive from epochs
  int64_t batch_size = 64;  // per rank
  OptimizerSpec optimizer;
  LrScheduleSpec lr_schedule;
  uint64_t seed = 42;
  int threads = 1;          // LibTorch intra-op threads per rank
  int64_t eval_every = 0;   // validation every N steps (0 = only at the end)
  int64_t log_every = 10;   // metrics every N steps
  double bucket_mb = 0;     // gradient bucket size; 0 = the worker's measured default
  bool overlap = true;      // reduce buckets while backward still runs
  double heartbeat_seconds = 5;  // each rank tells the coordinator its step this often
};

struct CheckpointSpec {
  std::string model;        // registry model name; default: the job name
  int64_t every_steps = 0;  // 0 = only at the end
  bool async = true;        // persist in the background while training goes on
  // How long the final (or preemption) save waits for an unavailable
  // storage before the attempt fails (and is requeued): long enough to
  // ride out a storage restart, short enough that a dead storage does not
  // hold the job's slots for long.
  double final_save_timeout = 120;  // seconds, > 0
  // Retention (storage keeps the union; aliased/tagged versions are kept too).
  int64_t keep_latest = 0;  // newest N versions (0 = keep all)
  int64_t keep_best = 0;    // best K by best_metric
  std::string best_metric = "test_accuracy";
  std::string best_mode = "max";  // max | min
};

struct RestartSpec {
  int max_restarts = 0;
  double backoff_seconds = 5.0;
  // A running attempt with no heartbeat for this long is killed as hung
  // (failure class "hang"); 0 disables the check.
  double hang_timeout_seconds = 300;
};

// A retraining run's section (docs/retraining.md, "A run"); the coordinator
// fills it in when a schedule submits a run. Empty: an ordinary job.
struct RetrainSpec {
  // data.format shards: train on these shards of data.path (file or shard
  // names) plus a `replay` share of the other shards. Empty: every shard.
  std::vector<std::string> new_files;
  double replay = 0;       // [0, 1): share of the older shards mixed in
  uint64_t replay_seed = 0;  // which older shards (the same seed, the same choice)
  // MODEL@REF evaluated beside the trained model on the job's held-out set
  // (data.test_file, or the IDX test files); its scores are saved with the
  // new version's metrics as champion_test_accuracy, champion_test_loss and
  // champion_version.
  std::string champion;

  bool empty() const { return new_files.empty() && replay == 0 && champion.empty(); }
};

struct JobSpec {
  std::string name;
  ModelSpec model;
  DataSpec data;
  ResourceSpec resources;
  TrainSpec train;
  CheckpointSpec checkpoint;
  RestartSpec restart;
  int priority = 0;
  // Longest an attempt may run, in seconds (0 = not declared). The
  // scheduler plans with it (EASY backfill, estimated starts) and stops an
  // attempt that outlives it (failure class time_limit). YAML also takes
  // "90s", "30m", "2h", "1d".
  double max_runtime = 0;
  std::string warm_start;  // "MODEL@REF": start from that checkpoint's parameters
  RetrainSpec retrain;
  // The job's own alert rules (docs/monitor.md "Alert rules"), validated by
  // alert_rules' ParseRules at Parse and kept as the YAML list (null when
  // absent); the coordinator sends them to the monitor with every job_state
  // event of the job.
  json alerts;

  // Validates and reads a spec. Relative data paths are resolved against
  // `base_dir` (the directory of the YAML file) when it is not empty.
  static Result<JobSpec> Parse(const json& j, const std::string& base_dir = "");
  json ToJson() const;
  // Checks that the data files exist and are readable.
  Status CheckFiles() const;
  // Slots the whole gang needs.
  int SlotsNeeded() const { return resources.workers * resources.slots_per_worker; }
};

}  // namespace gantry
