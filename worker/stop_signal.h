// StopSignal: turns SIGTERM and SIGUSR1 into a "please stop" flag that the
// training loop polls.
//
// Why both: the coordinator (or a user) may signal the ranks directly with
// SIGTERM; a signal sent to mpirun itself is not a graceful path, because
// OpenMPI 4.1's mpirun answers SIGTERM by killing its ranks
// (odls_base_sigkill_timeout, 1 s by default) and exits 1, whereas it
// forwards SIGUSR1 to every rank at once and passes their exit code (75)
// through. See docs/worker.md, "Signals".
//
// The handler only stores the signal number into a lock-free atomic (the
// one thing a handler may safely do). That atomic is necessarily
// process-wide, so at most one StopSignal may exist at a time; the
// destructor restores the previous handlers.
//
// Thread safety: requested() from any thread.
#pragma once

#include <signal.h>

#include <memory>

#include "common/status.h"

namespace gantry::worker {

class StopSignal {
 public:
  static Result<std::unique_ptr<StopSignal>> Install();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  // The first stop signal received (SIGTERM or SIGUSR1), or 0.
  int requested() const;
  // For tests: behave as if `sig` had arrived.
  void Raise(int sig);

 private:
  StopSignal() = default;
  struct sigaction old_term_ {};
  struct sigaction old_usr1_ {};
};

}  // namespace gantry::worker
