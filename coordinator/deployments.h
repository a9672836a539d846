// Deployments: runs the cluster's gantry-serve processes and keeps them up.
//
// A deployment is one gantry-serve process started through the coordinator's
// Launcher (StartProcess: the same exit-recording wrapper and process group
// as a job attempt). Tick(), called every coordinator loop turn, does:
//   1. poll each running process; one that ended is restarted after a
//      backoff (initial_backoff, doubling up to max_backoff, reset after a
//      run of stable_after), or, after more than max_restarts exits within
//      `window`, left down as CRASH_LOOP (the cli/supervisor.h policy);
//   2. a STARTING process becomes SERVING once its ready file appears
//      (<dir>/ready.json, written atomically by gantry-serve: port, pid and
//      served versions); one not ready within ready_timeout is killed and
//      counts as an exit;
//   3. a STOPPING process (undeploy) is killed after stop_grace; once it has
//      ended its record is removed;
//   4. relaunch what is due.
// The first start with port 0 lets gantry-serve pick a port; the port it
// reports is kept for every restart, so a deployment's address is stable.
// Changes are written to the DeploymentStore before they are acted on where
// it matters (a deployment is recorded before its process starts, its pid as
// soon as it runs); a failed write of a later state change is logged and
// written again with the next change (Recover reconciles with what runs).
//
// Coordinator restarts: Shutdown() (the coordinator stopping cleanly, which
// is what `gantry down` does) stops every gantry-serve and keeps the records,
// so the next start launches them again. A coordinator that dies without
// Shutdown() (a crash, kill -9) leaves them serving: Recover() re-adopts each
// live process group (Launcher::Adopt) without restarting it.
//
// Thread safety: none; owned by the coordinator's loop thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "coordinator/deployment.h"
#include "coordinator/deployment_store.h"
#include "coordinator/launcher.h"

namespace gantry::coordinator {

struct DeploymentPolicy {
  std::chrono::milliseconds initial_backoff{500};  // short: a kill -9 is back within seconds
  std::chrono::milliseconds max_backoff{30000};
  int max_restarts = 5;  // exits within `window` beyond this = crash loop
  std::chrono::milliseconds window{60000};
  std::chrono::milliseconds stable_after{60000};  // a run this long resets the backoff
  // Loading a model from storage and warming it takes seconds; a server not
  // ready after this is killed (and restarted under the same policy).
  std::chrono::milliseconds ready_timeout{120000};
  // SIGTERM to SIGKILL on undeploy and shutdown: in-flight requests finish.
  std::chrono::milliseconds stop_grace{10000};
};

struct DeploymentsOptions {
  std::string serve_binary;      // gantry-serve (default: next to gantry-coordinator)
  std::string storage_endpoint;  // --storage for gantry-serve (required to deploy)
  std::string monitor_endpoint;  // --monitor-ingest; empty = none
  std::string host = "127.0.0.1";
  std::string data_dir;  // the cluster's; deployments live in <data_dir>/deployments/<name>
  DeploymentPolicy policy;
};

class Deployments {
 public:
  // Not owned: launcher and clock outlive this.
  Deployments(DeploymentsOptions options, DeploymentStore store, Launcher& launcher, const Clock& clock);
  ~Deployments();
  Deployments(const Deployments&) = delete;
  Deployments& operator=(const Deployments&) = delete;

  // Loads the stored deployments: re-adopts live processes, schedules the
  // others to start now (CRASH_LOOP ones stay down), finishes undeploys.
  Status Recover();

  // Validates, records and launches. Errors name the field: invalid_argument
  // (bad name, ref, port, batching; a port in use), already_exists (the
  // name or port is another deployment's), failed_precondition (no
  // gantry-serve binary, no storage endpoint), the store's error.
  Result<Deployment> Deploy(DeploymentSpec spec);
  // Every deployment, by name.
  std::vector<Deployment> List() const;
  Result<Deployment> Get(const std::string& name) const;
  // SIGTERM to its process (STOPPING; the record goes once it ended), or
  // removes it at once when nothing runs. not_found for an unknown name.
  Result<Deployment> Undeploy(const std::string& name);

  void Tick();
  // Stops every process (SIGTERM, SIGKILL after stop_grace) and keeps the
  // records: they start again with the next coordinator.
  void Shutdown();
  // Leaves every process running and forgets them (what a crash does; tests).
  void Abandon();

  // The command line that starts `d` (public for tests and docs).
  std::vector<std::string> CommandLine(const Deployment& d) const;

 private:
  struct Live {
    Deployment d;
    std::unique_ptr<Launch> launch;  // null while nothing runs
    std::chrono::steady_clock::time_point started{};
    std::chrono::steady_clock::time_point next_start{};
    std::chrono::steady_clock::time_point stop_sent{};
    bool after_exit = false;  // the next start is a restart (not a start with the coordinator)
    int failures = 0;  // consecutive short runs, for the backoff
    std::deque<std::chrono::steady_clock::time_point> recent;  // exits within the window
    // The ready file last read: gantry-serve replaces it atomically (a new
    // inode each time), so the inode tells a rewrite apart even within the
    // file system's timestamp granularity (a jiffy), which mtime alone does
    // not.
    std::pair<uint64_t, int64_t> ready_stamp{0, 0};  // (inode, mtime ns)
  };

  void Start(Live& l);
  // A process ended (or was killed). Returns true when the record is gone.
  bool Ended(Live& l, const ExitInfo& exit, const std::string& why);
  void CheckReady(Live& l);
  // gantry-serve rewrites its ready file after each hot reload: the
  // version shown follows it.
  void RefreshVersion(Live& l);
  std::string ServingReason(const Deployment& d) const;
  void Save(Live& l);
  Status CheckPort(const DeploymentSpec& spec) const;
  std::string Dir(const std::string& name) const;

  DeploymentsOptions options_;
  DeploymentStore store_;
  Launcher& launcher_;
  const Clock& clock_;
  std::map<std::string, Live> live_;  // by name
};

}  // namespace gantry::coordinator
