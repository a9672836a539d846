// The coordinator's API: binds wire messages (docs/protocol.md) to
// Coordinator methods on the RpcServer's thread.
#pragma once

#include "common/rpc.h"
#include "coordinator/coordinator.h"

namespace gantry::coordinator {

// Registers submit_job, list_jobs, get_job, cancel_job and cluster_status,
// and runs Coordinator::Tick() on every server tick.
void RegisterHandlers(RpcServer& server, Coordinator& coordinator);

}  // namespace gantry::coordinator
