// Injectable clock. Components take a Clock& so tests advance a ManualClock
// instead of sleeping (seastar's manual_clock, leveldb's Env::NowMicros).
// Thread safety: SystemClock is stateless; ManualClock is internally locked.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace gantry {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time for intervals and deadlines.
  virtual std::chrono::steady_clock::time_point Now() const = 0;
  // Wall-clock seconds since the Unix epoch, for records shown to people.
  virtual double WallSeconds() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override {
    return std::chrono::steady_clock::now();
  }
  double WallSeconds() const override {
    using namespace std::chrono;
    return duration<double>(system_clock::now().time_since_epoch()).count();
  }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(double wall_start = 1.7e9) : wall_(wall_start) {}
  std::chrono::steady_clock::time_point Now() const override {
    std::lock_guard<std::mutex> l(mu_);
    return now_;
  }
  double WallSeconds() const override {
    std::lock_guard<std::mutex> l(mu_);
    return wall_;
  }
  void Advance(std::chrono::steady_clock::duration d) {
    std::lock_guard<std::mutex> l(mu_);
    now_ += d;
    wall_ += std::chrono::duration<double>(d).count();
  }

 private:
  mutable std::mutex mu_;
  std::chrono::steady_clock::time_point now_{};  // GUARDED_BY(mu_)
  double wall_;                                  // GUARDED_BY(mu_)
};

}  // namespace gantry
