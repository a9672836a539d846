#include "worker/comm_queue.h"

namespace gantry::worker {

struct CommQueue::State {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;  // GUARDED_BY(mu)
  Status status;      // GUARDED_BY(mu)
};

class CommQueue::QueueWork final : public Work {
 public:
  explicit QueueWork(std::shared_ptr<State> s) : state_(std::move(s)) {}
  Status Wait() override {
    std::unique_lock<std::mutex> l(state_->mu);
    state_->cv.wait(l, [&] { return state_->done; });
    return state_->status;
  }

 private:
  std::shared_ptr<State> state_;
};

CommQueue::CommQueue() : thread_([this] { Loop(); }) {}

CommQueue::~CommQueue() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::unique_ptr<Work> CommQueue::Push(std::function<Status()> job) {
  auto state = std::make_shared<State>();
  {
    std::lock_guard<std::mutex> l(mu_);
    jobs_.emplace_back(std::move(job), state);
  }
  cv_.notify_one();
  return std::make_unique<QueueWork>(std::move(state));
}

namespace {
Status RunGuarded(const std::function<Status()>& job) {
  try {
    return job();
  } catch (const std::exception& e) {
    return Status::Internal(std::string("communication job: ") + e.what());
  }
}
}  // namespace

Status CommQueue::Run(std::function<Status()> job) {
  {
    std::unique_lock<std::mutex> l(mu_);
    if (!jobs_.empty() || running_ || inline_) {
      l.unlock();
      return Push(std::move(job))->Wait();
    }
    inline_ = true;
  }
  Status st = RunGuarded(job);
  bool wake = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    inline_ = false;
    // Wake the queue's thread only if it has something to do: a needless
    // wake-up costs a context switch on a machine whose cores all spin.
    wake = stop_ || !jobs_.empty();
  }
  if (wake) cv_.notify_one();
  return st;
}

void CommQueue::Loop() {
  for (;;) {
    std::pair<std::function<Status()>, std::shared_ptr<State>> item;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return !inline_ && (stop_ || !jobs_.empty()); });
      if (jobs_.empty()) return;  // stop_ and drained
      item = std::move(jobs_.front());
      jobs_.pop_front();
      running_ = true;
    }
    Status st = RunGuarded(item.first);
    {
      std::lock_guard<std::mutex> l(mu_);
      running_ = false;
    }
    {
      std::lock_guard<std::mutex> l(item.second->mu);
      item.second->status = std::move(st);
      item.second->done = true;
    }
    item.second->cv.notify_all();
  }
}

}  // namespace gantry::worker
