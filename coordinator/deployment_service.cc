#include "coordinator/deployment_service.h"

#include "common/fields.h"

namespace gantry::coordinator {

json DeploymentJson(const Deployment& d, const std::string& host) {
  const DeploymentSpec& s = d.spec;
  return {{"name", s.name},
          {"model", s.model},
          {"ref", s.ref},
          {"int8", s.int8},
          {"max_batch", s.max_batch},
          {"max_delay_ms", s.max_delay_ms},
          {"sample_rate", s.sample_rate},
          {"requested_port", s.port},
          {"state", DeploymentStateName(d.state)},
          {"reason", d.reason},
          {"host", host},
          {"port", d.port},
          {"address", d.port > 0 ? "http://" + host + ":" + std::to_string(d.port) : ""},
          {"pid", d.serve_pid},
          {"pgid", d.pgid},
          {"version", d.version},
          {"restarts", d.restarts},
          {"created_at", d.created_at},
          {"updated_at", d.updated_at},
          {"started_at", d.started_at},
          {"ready_at", d.ready_at},
          {"last_exit", d.last_exit},
          {"log", d.dir.empty() ? "" : d.dir + "/serve.log"}};
}

void RegisterDeploymentHandlers(RpcServer& server, Deployments& deployments, std::string host) {
  server.Handle("deploy", [&deployments, host](const Request& r) -> Result<json> {
    const char* what = "deploy";
    DeploymentSpec spec;
    GANTRY_ASSIGN_OR_RETURN(spec.model, In(GetString(r.body, "model"), what));
    GANTRY_ASSIGN_OR_RETURN(spec.ref, In(GetRef(r.body, what, std::string("latest")), what));
    GANTRY_ASSIGN_OR_RETURN(spec.name, In(GetString(r.body, "name", ""), what));
    GANTRY_ASSIGN_OR_RETURN(int64_t port, In(GetInt(r.body, "port", 0), what));
    GANTRY_ASSIGN_OR_RETURN(int64_t max_batch, In(GetInt(r.body, "max_batch", spec.max_batch), what));
    GANTRY_ASSIGN_OR_RETURN(int64_t max_delay, In(GetInt(r.body, "max_delay_ms", spec.max_delay_ms), what));
    GANTRY_ASSIGN_OR_RETURN(spec.int8, In(GetBool(r.body, "int8", false), what));
    if (r.body.contains("sample_rate") && !r.body["sample_rate"].is_null()) {
      GANTRY_ASSIGN_OR_RETURN(spec.sample_rate, In(GetNumber(r.body, "sample_rate"), what));
    }
    // Clamped into int range first so an absurd value fails Validate() by name.
    auto narrow = [](int64_t v) { return static_cast<int>(std::clamp<int64_t>(v, -1, 1 << 30)); };
    spec.port = narrow(port);
    spec.max_batch = narrow(max_batch);
    spec.max_delay_ms = narrow(max_delay);
    GANTRY_ASSIGN_OR_RETURN(Deployment d, deployments.Deploy(std::move(spec)));
    return json{{"deployment", DeploymentJson(d, host)}};
  });
  server.Handle("list_deployments", [&deployments, host](const Request&) -> Result<json> {
    json out = json::array();
    for (const auto& d : deployments.List()) out.push_back(DeploymentJson(d, host));
    return json{{"deployments", std::move(out)}};
  });
  server.Handle("get_deployment", [&deployments, host](const Request& r) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(std::string name, In(GetString(r.body, "name"), "get_deployment"));
    GANTRY_ASSIGN_OR_RETURN(Deployment d, deployments.Get(name));
    return json{{"deployment", DeploymentJson(d, host)}};
  });
  server.Handle("undeploy", [&deployments, host](const Request& r) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(std::string name, In(GetString(r.body, "name"), "undeploy"));
    GANTRY_ASSIGN_OR_RETURN(Deployment d, deployments.Undeploy(name));
    return json{{"deployment", DeploymentJson(d, host)}};
  });
}

}  // namespace gantry::coordinator
