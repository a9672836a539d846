// The reference profile of the training data saved with every checkpoint
// (docs/monitor.md, "Reference profile with each checkpoint"): rank 0 builds
// it once per run from the loaded training set (features flattened to one
// float32 row per sample, plus label counts), calibrates its dataset
// threshold on that set, and adds it to each snapshot as the uint8 tensor
// drift::kProfileTensorName. Bounded in size (kProfileMaxPoints points per
// feature) and in time: at most kProfileMaxRows rows, evenly spaced over the
// set, and kCalibrationWindows resampled windows, so that building it costs
// rank 0 seconds once per run instead of minutes (10,000 rows x 784 with
// 200 exact-KS windows took 255 s on 2 cores). A profile that
// cannot be built is logged and left out; it never fails a save.
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <system_error>

#include "drift/ks.h"
#include "drift/stored_profile.h"
#include "worker/trainer.h"

namespace gantry::worker {
namespace {

// Distinct values (or sketch points) kept per feature: Fashion-MNIST pixels
// have at most 256, so they stay exact; for CSV features a sketch keeps KS
// within 1/256 of exact, at 784 features ~2.4 MB of MessagePack.
constexpr int64_t kProfileMaxPoints = 256;
// Rows profiled. Above 10,000 reference rows KS p-values take the asymptotic
// path, as scipy's ks_2samp does (drift/ks.h); at or below it every window
// pays for the exact distribution, which is what made 10,000-row profiles
// take minutes. 20,000 rows keep the sketch's 1/256 resolution the limit.
constexpr int64_t kProfileMaxRows = 20000;
// Null windows for the threshold and as many to check it: with the 5% floor
// on the share (drift/calibration.h) the floor decides on image data anyway.
constexpr int kCalibrationWindows = 20;
using Seconds = std::chrono::duration<double>;

// The profile of `features` (one row per sample) and `labels`, as the
// uint8 tensor saved with checkpoints; undefined when it cannot be built.
torch::Tensor BuildProfileTensor(torch::Tensor f, torch::Tensor l, const Clock& clock) {
  const auto t0 = clock.Now();
  try {
    if (f.size(0) == 0) return {};
    f = f.detach().to(torch::kCPU, torch::kFloat32).reshape({f.size(0), -1});
    l = l.detach().to(torch::kCPU, torch::kInt64);
    if (f.size(0) > kProfileMaxRows) {
      const torch::Tensor rows = torch::linspace(0, static_cast<double>(f.size(0) - 1), kProfileMaxRows).to(torch::kInt64);
      f = f.index_select(0, rows);
      l = l.index_select(0, rows);
    }
    f = f.contiguous();
    l = l.contiguous();
    const auto rows = static_cast<size_t>(f.size(0)), cols = static_cast<size_t>(f.size(1));
    const drift::MatrixView view =
        drift::MatrixView::Of(std::span<const float>(f.data_ptr<float>(), rows * cols), rows, cols);
    std::vector<int64_t> labels(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + l.numel());
    const std::vector<drift::CategoricalColumn> categorical{{"label", std::span<const int64_t>(labels)}};
    drift::ReferenceOptions options;
    options.profile.max_points = kProfileMaxPoints;
    options.calibration.windows = kCalibrationWindows;
    options.calibration.check_windows = kCalibrationWindows;
    // Small sets would calibrate with exact-KS windows (seconds each): they
    // keep the detector's default threshold instead.
    options.calibrate = f.size(0) > drift::kKsMaxExactN;
    auto profile = drift::BuildReferenceProfile(view, {}, categorical, options);
    if (!profile.ok()) {
      spdlog::warn("checkpoint: no drift profile: {}", profile.status().ToString());
      return {};
    }
    std::vector<uint8_t> bytes = drift::ProfileToBytes(*profile);
    torch::Tensor out = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
    std::memcpy(out.data_ptr(), bytes.data(), bytes.size());
    spdlog::info("checkpoint: drift profile of {} training rows x {} features: {} bytes, threshold {} ({:.2f} s)",
                 rows, cols, bytes.size(), profile->calibration ? profile->calibration->share_threshold : 0.0,
                 Seconds(clock.Now() - t0).count());
    return out;
  } catch (const std::exception& e) {
    spdlog::warn("checkpoint: no drift profile: {}", e.what());
    return {};
  }
}

}  // namespace

std::shared_future<torch::Tensor> StartDriftProfileThread(const TensorDataset& train, const Clock& clock) {
  if (!train.features.defined()) return {};
  torch::Tensor features = train.features.reshape({train.size(), -1});
  torch::Tensor labels = train.labels;
  try {
    return std::async(std::launch::async, [features, labels, &clock] {
      // Lowest priority (Linux: nice is per thread): it takes what the
      // ranks leave, rather than slowing every step of every rank while it
      // runs; a save taken before it is done carries it deferred, and the
      // saver's thread waits for it.
      ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 19);
      return BuildProfileTensor(features, labels, clock);
    });
  } catch (const std::system_error& e) {  // no thread: built inline at the first save
    spdlog::warn("checkpoint: drift profile built inline (no thread: {})", e.what());
    return {};
  }
}

void Trainer::StartDriftProfile() {
  if (drift_profile_built_ || drift_profile_pending_.valid()) return;
  if (options_.drift_profile.valid()) {  // started before MPI (gantry-worker's main)
    drift_profile_pending_ = options_.drift_profile;
    return;
  }
  drift_profile_pending_ = StartDriftProfileThread(train_, clock_);
}

void Trainer::AddDriftProfile(Checkpoint& c) {
  if (!drift_profile_built_ && drift_profile_pending_.valid() &&
      drift_profile_pending_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    c.deferred[drift::kProfileTensorName] = drift_profile_pending_;  // the saver waits, not training
    return;
  }
  if (!drift_profile_built_) {
    drift_profile_built_ = true;
    if (drift_profile_pending_.valid()) {
      drift_profile_ = drift_profile_pending_.get();
    } else if (train_.features.defined()) {
      drift_profile_ = BuildProfileTensor(train_.features.reshape({train_.size(), -1}), train_.labels, clock_);
    }
  }
  // Immutable once built: shared with every snapshot, no copy.
  if (drift_profile_.defined()) c.tensors[drift::kProfileTensorName] = drift_profile_;
}

}  // namespace gantry::worker
