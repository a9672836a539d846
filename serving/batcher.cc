#include "serving/batcher.h"

#include <algorithm>
#include <exception>
#include <shared_mutex>
#include <utility>

namespace gantry::serving {
namespace {

// A throwing DoneFn must not take the worker (and every later request) down.
void Deliver(const DoneFn& done, Result<RowsResult> result) {
  try {
    done(std::move(result));
  } catch (...) {  // the caller's bug; nothing left to tell it
  }
}

}  // namespace

struct Batcher::Anchor {
  std::shared_mutex mu;
  Batcher* batcher = nullptr;  // GUARDED_BY(mu); null once the batcher is gone
};

// The deferred flush: runs once, or, destroyed unrun (the loop stopped or
// would not take it), hands the queue to the worker.
class Batcher::FlushTask {
 public:
  FlushTask(std::shared_ptr<Anchor> anchor, DeferFn defer) : anchor_(std::move(anchor)), defer_(defer) {}
  ~FlushTask() {
    if (!ran_) With([](Batcher& b, DeferFn) { b.FlushDropped(); });
  }
  FlushTask(const FlushTask&) = delete;
  FlushTask& operator=(const FlushTask&) = delete;
  void Run() {
    ran_ = true;
    With([](Batcher& b, DeferFn defer) { b.Flush(defer); });
  }

 private:
  template <class F>
  void With(F f) {
    std::shared_lock<std::shared_mutex> l(anchor_->mu);
    if (anchor_->batcher != nullptr) f(*anchor_->batcher, defer_);
  }
  std::shared_ptr<Anchor> anchor_;
  DeferFn defer_;
  bool ran_ = false;
};

Batcher::Batcher(BatcherOptions options, BatchFn fn)
    : options_(std::move(options)), fn_(std::move(fn)), anchor_(std::make_shared<Anchor>()) {
  anchor_->batcher = this;
  if (options_.max_batch == 0) options_.max_batch = 1;
  if (options_.row_size == 0) options_.row_size = 1;
  if (options_.max_queued_rows == 0) options_.max_queued_rows = std::max<size_t>(1024, 16 * options_.max_batch);
  if (options_.max_queued_requests == 0) options_.max_queued_requests = 1;
  clock_ = options_.clock != nullptr ? options_.clock : &system_clock_;
  worker_ = std::thread([this] { Run(); });
}

Batcher::~Batcher() {
  Stop(StopMode::kFail);
  // Waits for a flush running now (it holds the anchor); later ones find
  // nothing.
  std::unique_lock<std::shared_mutex> l(anchor_->mu);
  anchor_->batcher = nullptr;
}

Status Batcher::Submit(std::vector<float> rows, DoneFn done, DeferFn defer) {
  const size_t rs = options_.row_size;
  std::unique_lock<std::mutex> l(mu_);
  auto refuse = [&](Status s) {
    ++stats_.rejected;
    return s;
  };
  if (rows.empty() || rows.size() % rs != 0) {
    return refuse(Status::InvalidArgument(
        "batcher: a request needs whole rows of " + std::to_string(rs) + " elements (got " +
        std::to_string(rows.size()) + ")"));
  }
  if (!done) return refuse(Status::InvalidArgument("batcher: no completion callback"));
  const size_t n = rows.size() / rs;
  if (n > options_.max_batch) {
    return refuse(Status::InvalidArgument(
        "batcher: " + std::to_string(n) + " rows exceed max_batch " +
        std::to_string(options_.max_batch) + "; split the request"));
  }
  if (stopping_) return refuse(Status::Unavailable("batcher: stopping"));
  if (queue_.size() >= options_.max_queued_requests ||
      queued_rows_ + n > options_.max_queued_rows) {
    return refuse(Status::ResourceExhausted(
        "serving queue full (" + std::to_string(queue_.size()) + " requests, " +
        std::to_string(queued_rows_) + " rows queued; limits " +
        std::to_string(options_.max_queued_requests) + " requests, " +
        std::to_string(options_.max_queued_rows) + " rows); retry later"));
  }
  queue_.push_back(Pending{std::move(rows), n, std::move(done), clock_->Now()});
  queued_rows_ += n;
  if (defer != nullptr && options_.run_on_submitting_loop && options_.max_delay.count() == 0) {
    if (flush_scheduled_) return Status::Ok();  // that flush takes this request too
    flush_scheduled_ = true;
    l.unlock();
    ScheduleFlush(defer);  // on failure the worker was woken
    return Status::Ok();
  }
  l.unlock();
  cv_.notify_all();
  return Status::Ok();
}

bool Batcher::ScheduleFlush(DeferFn defer) {
  auto task = std::make_shared<FlushTask>(anchor_, defer);
  // When defer refuses, `task` dies unrun here: FlushDropped.
  return defer([task] { task->Run(); });
}

void Batcher::FlushDropped() {
  {
    std::lock_guard<std::mutex> l(mu_);
    flush_scheduled_ = false;
  }
  cv_.notify_all();
}

void Batcher::Flush(DeferFn defer) {
  std::unique_lock<std::mutex> l(mu_);
  // The worker running a batch takes the queue after it (Run loops while
  // it is not empty); stopping: the worker or Stop answer what is queued.
  if (stopping_ || busy_ || queue_.empty()) {
    flush_scheduled_ = false;
    const bool wake = stopping_;
    l.unlock();
    if (wake) cv_.notify_all();
    return;
  }
  std::vector<Pending> batch = TakeBatchLocked();
  busy_ = true;
  ++stats_.loop_batches;
  l.unlock();
  RunBatch(batch);
  l.lock();
  busy_ = false;
  if (stopping_ || queue_.empty()) {
    flush_scheduled_ = false;
    const bool wake = stopping_;  // Stop waits for the batch to end
    l.unlock();
    if (wake) cv_.notify_all();
    return;
  }
  // More arrived meanwhile: flush again after this loop reads its sockets.
  l.unlock();
  ScheduleFlush(defer);
}

std::future<Result<RowsResult>> Batcher::Submit(std::vector<float> rows) {
  auto promise = std::make_shared<std::promise<Result<RowsResult>>>();
  auto future = promise->get_future();
  Status s = Submit(std::move(rows),
                    [promise](Result<RowsResult> r) { promise->set_value(std::move(r)); });
  if (!s.ok()) promise->set_value(std::move(s));
  return future;
}

void Batcher::Stop(StopMode mode) {
  std::lock_guard<std::mutex> stop_lock(stop_mu_);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!stopping_) {
      stopping_ = true;
      stop_mode_ = mode;
    }
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  // Whatever the worker left (kFail) is answered here, outside the lock,
  // once a batch running on a submitting loop has ended.
  std::deque<Pending> left;
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return !busy_; });
    left.swap(queue_);
    queued_rows_ = 0;
  }
  for (auto& p : left) {
    Deliver(p.done, Status::Unavailable("serving stopped before the request ran"));
  }
}

void Batcher::Notify() {
  { std::lock_guard<std::mutex> l(mu_); }  // orders the clock change before the wake
  cv_.notify_all();
}

Batcher::Stats Batcher::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  Stats s = stats_;
  s.queued_rows = queued_rows_;
  s.queued_requests = queue_.size();
  return s;
}

bool Batcher::stopping() const {
  std::lock_guard<std::mutex> l(mu_);
  return stopping_;
}

std::vector<Batcher::Pending> Batcher::TakeBatchLocked() {
  std::vector<Pending> batch;
  size_t rows = 0;
  while (!queue_.empty() && rows + queue_.front().n <= options_.max_batch) {
    rows += queue_.front().n;
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  queued_rows_ -= rows;
  return batch;
}

void Batcher::Run() {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    if (stopping_ && (stop_mode_ == StopMode::kFail || queue_.empty())) return;
    if (queue_.empty() || busy_) {  // busy_: a loop flush runs a batch
      cv_.wait(l);
      continue;
    }
    const bool full = queued_rows_ >= options_.max_batch;
    if (!full && !stopping_ && options_.max_delay.count() > 0) {
      const auto deadline = queue_.front().enqueued + options_.max_delay;
      const auto now = clock_->Now();
      if (now < deadline) {
        ++stats_.waits;
        // Real time stands in for the injected clock's remaining time; an
        // early wake (Notify, new rows, a ManualClock) only re-checks.
        cv_.wait_for(l, deadline - now);
        continue;
      }
    }
    std::vector<Pending> batch = TakeBatchLocked();
    busy_ = true;
    l.unlock();
    RunBatch(batch);
    l.lock();
    busy_ = false;
  }
}

void Batcher::RunBatch(std::vector<Pending>& batch) {
  const size_t rs = options_.row_size;
  size_t rows = 0;
  for (const auto& p : batch) rows += p.n;
  std::vector<float> input;
  if (batch.size() == 1) {
    input = std::move(batch[0].rows);
  } else {
    input.reserve(rows * rs);
    for (const auto& p : batch) input.insert(input.end(), p.rows.begin(), p.rows.end());
  }
  Result<BatchOutput> out = Status::Internal("batch function did not run");
  try {
    out = fn_(BatchInput{input, rows, rs});
  } catch (const std::exception& e) {
    out = Status::Internal(std::string("batch function threw: ") + e.what());
  } catch (...) {
    out = Status::Internal("batch function threw");
  }
  if (out.ok() && (out->data.empty() || out->data.size() % rows != 0)) {
    out = Status::Internal("batch function returned " + std::to_string(out->data.size()) +
                           " elements for " + std::to_string(rows) + " rows");
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    ++stats_.batches;
    stats_.rows += rows;
    stats_.requests += batch.size();
    if (!out.ok()) ++stats_.failed_batches;
  }
  if (!out.ok()) {
    for (auto& p : batch) Deliver(p.done, out.status());
    return;
  }
  const size_t out_rs = out->data.size() / rows;
  size_t offset = 0;
  for (auto& p : batch) {
    RowsResult r;
    r.rows = p.n;
    r.row_size = out_rs;
    r.model_version = out->model_version;
    r.batch_rows = rows;
    const auto begin = out->data.begin() + static_cast<std::ptrdiff_t>(offset * out_rs);
    r.data.assign(begin, begin + static_cast<std::ptrdiff_t>(p.n * out_rs));
    offset += p.n;
    Deliver(p.done, std::move(r));
  }
}

}  // namespace gantry::serving
