// SignalFd: turns SIGINT/SIGTERM/SIGHUP into a readable file descriptor so a
// service's poll loop handles shutdown like any other event (no handler
// globals). Create it first in main(), before any thread starts, so every
// thread inherits the blocked mask. ChildProcess restores the default mask
// in children.
#pragma once

#include "common/status.h"

namespace gantry {

class SignalFd {
 public:
  static Result<SignalFd> Create();
  SignalFd(SignalFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  SignalFd& operator=(SignalFd&&) = delete;
  SignalFd(const SignalFd&) = delete;
  ~SignalFd();

  int fd() const { return fd_; }
  // Reads one pending signal; returns its number (0 if none).
  int Read();

 private:
  explicit SignalFd(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace gantry
