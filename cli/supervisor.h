// Supervisor: the restart policy of the embedded cluster (`gantry up`).
//
// It keeps one record per service and, on each Tick(), reaps services that
// ended and (re)starts those whose backoff has expired. Policy, like
// systemd's Restart=on-failure: a service that exits with code 0 was stopped
// on purpose (`gantry down`, a shutdown request) and is not restarted; one
// that exits non-zero or is killed by a signal is restarted after an
// exponential backoff (initial_backoff, doubling up to max_backoff; reset
// once a run lasted stable_after). A service that needs more than
// max_restarts restarts within `window` is crash-looping: it is left down
// (state kCrashLoop) until Reset().
//
// Processes are started and reaped through a ProcessStarter so tests drive
// the policy with a fake starter and a ManualClock (tests/cli/supervisor_test.cc).
//
// Thread safety: none; one thread owns a Supervisor.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/process.h"
#include "common/status.h"

namespace gantry::cli {

// Starts and reaps the processes of named services. Start() returns once
// the service is ready (or failed to become ready).
class ProcessStarter {
 public:
  virtual ~ProcessStarter() = default;
  virtual Result<pid_t> Start(const std::string& service) = 0;
  // Non-blocking: how the service's current process ended, once it has.
  virtual std::optional<ExitInfo> Poll(const std::string& service) = 0;
};

struct SupervisorPolicy {
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30000};
  int max_restarts = 5;                   // within `window`; one more crash = crash loop
  std::chrono::milliseconds window{60000};
  std::chrono::milliseconds stable_after{60000};
};

enum class ServiceState { kPending, kRunning, kBackoff, kStopped, kCrashLoop };
const char* ServiceStateName(ServiceState s);

struct ServiceRecord {
  std::string name;
  ServiceState state = ServiceState::kPending;
  pid_t pid = 0;
  bool adopted = false;  // found running, not our child: its exit status is unknown
  int restarts = 0;      // successful restarts since the supervisor started (or Reset)
  std::optional<ExitInfo> last_exit;
  double last_exit_wall = 0;  // Clock::WallSeconds() of the last exit
  std::string last_error;     // why the last start attempt failed, if it did
  int failures = 0;           // consecutive failures, for the backoff
  std::chrono::steady_clock::time_point started_at{};
  std::chrono::steady_clock::time_point next_start{};
  std::deque<std::chrono::steady_clock::time_point> recent;  // restart times within `window`
};

class Supervisor {
 public:
  // `services` in start order. Not owned: clock, starter (must outlive this).
  Supervisor(Clock& clock, ProcessStarter& starter, SupervisorPolicy policy, std::vector<std::string> services);

  // Marks a service as already running (started by someone else): it is
  // watched and restarted like the others, but not started again.
  void Adopt(const std::string& service, pid_t pid);
  // Starts every pending service in order. Stops at, and returns, the first
  // start failure (the remaining ones stay pending).
  Status StartPending();
  // Reaps ended services, starts those whose backoff expired. Returns true
  // when some record changed (the caller republishes the state).
  bool Tick();
  // Gives stopped, crash-looped and backing-off services a fresh start (SIGHUP,
  // `gantry up` on a supervised cluster) on the next Tick().
  void Reset();

  const std::vector<ServiceRecord>& services() const { return records_; }
  const ServiceRecord* Find(const std::string& service) const;
  // True when every service was stopped on purpose (exited 0).
  bool AllStopped() const;

 private:
  ServiceRecord& Get(const std::string& service);
  void OnExit(ServiceRecord& r, const ExitInfo& e);
  void Failed(ServiceRecord& r);
  bool TryStart(ServiceRecord& r, bool restart);

  Clock& clock_;
  ProcessStarter& starter_;
  SupervisorPolicy policy_;
  std::vector<ServiceRecord> records_;
};

}  // namespace gantry::cli
