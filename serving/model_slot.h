// The hot-reload slot: holds the model that new batches use, swappable while
// batches run.
//
// A batch takes the current model once (Get(), a shared_ptr copy) and runs to
// the end on it, so a Swap() never disturbs a forward in flight: the old model
// lives until its last batch drops the pointer, and every batch after the swap
// gets the new one. Loading and warming the new version happens before Swap,
// beside the old one (the caller's job), so the swap itself is a pointer store.
//
// Thread safety: Get, Swap and generation may be called from any thread; the
// mutex guards only the pointer copy (tens of nanoseconds), never a forward.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "common/status.h"
#include "serving/batcher.h"

namespace gantry::serving {

// What the slot serves: one loaded, warmed model version. Implemented over
// LibTorch in model/ (this library does not link it) and by fakes in tests.
class Servable {
 public:
  virtual ~Servable() = default;
  // The registry version this model was built from ("7").
  virtual const std::string& version() const = 0;
  // One forward over input.rows rows; thread-safe (const), may run
  // concurrently with other batches on the same model.
  virtual Result<std::vector<float>> Forward(const BatchInput& input) const = 0;
};

template <typename T>
class ModelSlot {
 public:
  ModelSlot() = default;
  explicit ModelSlot(std::shared_ptr<const T> initial) : current_(std::move(initial)) {}
  ModelSlot(const ModelSlot&) = delete;
  ModelSlot& operator=(const ModelSlot&) = delete;

  // The current model; nullptr before the first Swap.
  std::shared_ptr<const T> Get() const {
    std::lock_guard<std::mutex> l(mu_);
    return current_;
  }
  // Installs `next` for all later Get()s; returns the previous model (still
  // alive while batches hold it).
  std::shared_ptr<const T> Swap(std::shared_ptr<const T> next) {
    std::lock_guard<std::mutex> l(mu_);
    ++generation_;
    std::swap(current_, next);
    return next;
  }
  // Number of swaps so far.
  uint64_t generation() const {
    std::lock_guard<std::mutex> l(mu_);
    return generation_;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const T> current_;  // GUARDED_BY(mu_)
  uint64_t generation_ = 0;           // GUARDED_BY(mu_)
};

// A BatchFn that runs each batch on the slot's current model and stamps the
// model's version on the output; unavailable while the slot is empty. The slot
// must outlive the returned function.
BatchFn SlotBatchFn(const ModelSlot<Servable>& slot);

}  // namespace gantry::serving
