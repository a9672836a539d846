#include "common/signal_fd.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gantry {

Result<SignalFd> SignalFd::Create() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGHUP);
  if (::pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0) {
    return Status::Internal("pthread_sigmask failed");
  }
  int fd = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) return Status::Internal(std::string("signalfd: ") + std::strerror(errno));
  return SignalFd(fd);
}

SignalFd::~SignalFd() {
  if (fd_ >= 0) ::close(fd_);
}

int SignalFd::Read() {
  signalfd_siginfo info;
  ssize_t n = ::read(fd_, &info, sizeof info);
  return n == sizeof info ? static_cast<int>(info.ssi_signo) : 0;
}

}  // namespace gantry
