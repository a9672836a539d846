// The coordinator's deployment API: binds deploy, list_deployments,
// get_deployment and undeploy (docs/protocol.md, "Deployments") to a
// Deployments on the RpcServer's thread.
#pragma once

#include "common/rpc.h"
#include "coordinator/deployments.h"

namespace gantry::coordinator {

// The wire form of a deployment (list_deployments, get_deployment, ...).
json DeploymentJson(const Deployment& d, const std::string& host);

// Registers the handlers; the caller runs Deployments::Tick() on the
// server's tick (main.cc).
void RegisterDeploymentHandlers(RpcServer& server, Deployments& deployments, std::string host = "127.0.0.1");

}  // namespace gantry::coordinator
