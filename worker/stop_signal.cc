#include "worker/stop_signal.h"

#include <atomic>
#include <cerrno>
#include <cstring>

namespace gantry::worker {
namespace {

std::atomic<int> g_signal{0};      // written by the handler
std::atomic<bool> g_installed{false};
static_assert(std::atomic<int>::is_always_lock_free, "a signal handler may only touch lock-free atomics");

void OnSignal(int sig) {
  int expected = 0;
  g_signal.compare_exchange_strong(expected, sig);
}

}  // namespace

Result<std::unique_ptr<StopSignal>> StopSignal::Install() {
  if (g_installed.exchange(true)) return Status::FailedPrecondition("StopSignal: already installed");
  g_signal.store(0);
  std::unique_ptr<StopSignal> s(new StopSignal());
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // blocking calls (zmq, MPI) go on; the loop polls the flag
  if (::sigaction(SIGTERM, &sa, &s->old_term_) != 0 || ::sigaction(SIGUSR1, &sa, &s->old_usr1_) != 0) {
    g_installed.store(false);
    return Status::Internal(std::string("sigaction: ") + std::strerror(errno));
  }
  return s;
}

StopSignal::~StopSignal() {
  ::sigaction(SIGTERM, &old_term_, nullptr);
  ::sigaction(SIGUSR1, &old_usr1_, nullptr);
  g_installed.store(false);
}

int StopSignal::requested() const { return g_signal.load(); }

void StopSignal::Raise(int sig) { OnSignal(sig); }

}  // namespace gantry::worker
