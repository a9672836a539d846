// A deployment as the coordinator tracks it: which model a gantry-serve
// process serves, on which port, with which batching, and where its process
// stands. Plain data; DeploymentStore persists it, Deployments runs it.
//
// States:
//   STARTING   launched, its ready file not written yet
//   SERVING    ready (its gantry-serve wrote the ready file)
//   RESTARTING its process ended; relaunched when the backoff expires
//   CRASH_LOOP it ended too often (DeploymentPolicy); left down until
//              `gantry undeploy` (then deploy again)
//   STOPPING   undeploy asked it to stop; the record goes once it has
// A deployment is wanted until undeployed: an exit, even with code 0, is
// restarted. Wire form in coordinator/deployment_service.cc.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace gantry::coordinator {

enum class DeploymentState { kStarting, kServing, kRestarting, kCrashLoop, kStopping };

std::string_view DeploymentStateName(DeploymentState s);
std::optional<DeploymentState> DeploymentStateFromName(std::string_view name);

// What `gantry deploy` asks for. Defaults are gantry-serve's.
struct DeploymentSpec {
  std::string name;        // [A-Za-z0-9][A-Za-z0-9._-]{0,62}; default: the model's name
  std::string model;       // registry model name
  std::string ref;         // alias, version ("v3" or "3") or "latest"
  int port = 0;            // 0 = gantry-serve picks one at first start, then it is kept
  int max_batch = 64;      // 1..4096: rows run together
  int max_delay_ms = 0;    // 0..10000: how long a batch waits to fill (0: batch what is queued)
  bool int8 = false;       // serve the int8-optimised version of the ref
  double sample_rate = 0.1;  // 0..1: share of requests whose rows go to the monitor's drift windows

  std::string ModelRef() const { return model + "@" + ref; }
  // Fills the name from the model when empty and checks every field. The
  // error names the field: `deploy: max_batch must be 1..4096 (got 0)`.
  Status Validate();
};

// Splits "MODEL@REF"; invalid_argument naming field `model` when malformed.
Status ParseModelRef(const std::string& model_ref, std::string* model, std::string* ref);

struct Deployment {
  DeploymentSpec spec;
  DeploymentState state = DeploymentState::kStarting;
  std::string reason;       // what it is doing or why it is down
  int port = 0;             // the bound port once known (spec.port, or what the server picked)
  int pid = 0;              // the launch's group leader (exit-status wrapper); 0 when none runs
  int pgid = 0;             // its process group, for re-adoption
  int serve_pid = 0;        // gantry-serve itself, from its ready file
  std::string version;      // served version(s), from the ready file ("mnist:3")
  int restarts = 0;         // relaunches after an exit since it was deployed
  double created_at = 0;    // unix seconds
  double updated_at = 0;
  double started_at = 0;    // of the current (or last) process
  double ready_at = 0;      // when the current process became ready; 0 while not
  std::string last_exit;    // how the last process ended ("killed by signal 9")
  std::string dir;          // <data>/deployments/<name>: serve.log, ready.json, exit_status
};

}  // namespace gantry::coordinator
