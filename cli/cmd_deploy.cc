// gantry deploy / deployments / undeploy: model servers the coordinator runs
// and keeps up (docs/serving.md, "Deployments").
//
// The coordinator says what runs where (list_deployments); `gantry
// deployments` then asks each serving gantry-serve itself for health
// (GET /v2/health/ready), the version it serves (GET /v2/models/{m}) and its
// request count (GET /v2/models/{m}/stats, sampled twice for a rate). Every
// HTTP look is bounded and optional: a server that lacks an endpoint, or does
// not answer, shows "-" rather than failing the command.
#include <cmath>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "cli/http_get.h"
#include "cli/render.h"

namespace gantry::cli {
namespace {

constexpr auto kHttpTimeout = std::chrono::milliseconds(1500);
constexpr auto kPollEvery = std::chrono::milliseconds(100);

struct DeployOptions {
  std::string model_ref;
  std::string name;
  int port = 0;
  int max_batch = 64;
  int max_delay_ms = 0;
  bool int8 = false;
  double sample_rate = 0.1;
  bool no_wait = false;
  double timeout = 120;
  bool as_json = false;
};

// json.value() that tolerates a field of another type.
std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}
int64_t Int(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<int64_t>() : 0;
}

// The served version per the server's metadata ("versions": [...] in KServe
// v2, or "version"); empty when it does not say.
std::string LiveVersion(const json& meta) {
  if (auto v = meta.find("versions"); v != meta.end() && v->is_array() && !v->empty()) {
    const json& last = v->back();
    return last.is_string() ? last.get<std::string>() : last.dump();
  }
  if (auto v = meta.find("version"); v != meta.end()) return v->is_string() ? v->get<std::string>() : v->dump();
  return "";
}

// The request count from a statistics reply (Triton-style
// {"model_stats":[{"inference_count"}]}, or a flat count); nullopt if none.
std::optional<double> RequestCount(const json& stats) {
  const json* s = &stats;
  if (auto ms = stats.find("model_stats"); ms != stats.end() && ms->is_array() && !ms->empty()) s = &ms->front();
  // request_count (gantry-serve) before inference_count (Triton: rows).
  for (const char* key : {"request_count", "inference_count", "requests"}) {
    if (auto it = s->find(key); it != s->end() && it->is_number()) return it->get<double>();
  }
  return std::nullopt;
}

std::optional<json> GetJson(const std::string& host, int port, const std::string& path) {
  auto r = HttpGet(host, port, path, kHttpTimeout);
  if (!r.ok() || r->status != 200) return std::nullopt;
  json j = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

// Adds "health", "live_version" and "request_rate" to each serving
// deployment of a list_deployments reply, asking the servers themselves.
void Probe(json& deployments, std::chrono::milliseconds rate_window) {
  struct Sample {
    json* d;
    std::optional<double> count;
    std::chrono::steady_clock::time_point at;
  };
  std::vector<Sample> samples;
  for (json& d : deployments) {
    d["health"] = "-";
    d["live_version"] = nullptr;
    d["request_rate"] = nullptr;
    std::string host = Str(d, "host");
    int port = static_cast<int>(Int(d, "port"));
    if (Str(d, "state") != "SERVING" || port <= 0) continue;
    auto ready = HttpGet(host, port, "/v2/health/ready", kHttpTimeout);
    if (!ready.ok()) {
      d["health"] = "unreachable";
      continue;
    }
    d["health"] = ready->status == 200 ? "ready" : "not ready (" + std::to_string(ready->status) + ")";
    std::string model = Str(d, "model");
    if (auto meta = GetJson(host, port, "/v2/models/" + model)) {
      std::string v = LiveVersion(*meta);
      if (!v.empty()) d["live_version"] = model + ":" + v;
    }
    std::optional<double> count;
    if (auto stats = GetJson(host, port, "/v2/models/" + model + "/stats")) count = RequestCount(*stats);
    if (count) samples.push_back({&d, count, std::chrono::steady_clock::now()});
  }
  if (samples.empty() || rate_window.count() <= 0) return;
  std::this_thread::sleep_for(rate_window);  // the rate is a difference over this window
  for (Sample& s : samples) {
    json& d = *s.d;
    auto stats = GetJson(Str(d, "host"), static_cast<int>(Int(d, "port")), "/v2/models/" + Str(d, "model") + "/stats");
    auto now = std::chrono::steady_clock::now();
    std::optional<double> count = stats ? RequestCount(*stats) : std::nullopt;
    if (!count || *count < *s.count) continue;
    // Our own stats GET counts as a request on servers that count every GET.
    double seconds = std::chrono::duration<double>(now - s.at).count();
    d["request_rate"] = std::max(0.0, (*count - *s.count - 1)) / seconds;
  }
}

std::string Rate(const json& d) {
  auto it = d.find("request_rate");
  if (it == d.end() || !it->is_number()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", it->get<double>());
  return buf;
}

void RenderDeployments(const json& deployments, std::ostream& out) {
  if (deployments.empty()) {
    out << "no deployments (start one: gantry deploy MODEL@ALIAS)\n";
    return;
  }
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> notes;
  for (const json& d : deployments) {
    std::string version = d.contains("live_version") && d["live_version"].is_string()
                              ? d["live_version"].get<std::string>()
                              : Str(d, "version");
    std::string model = Str(d, "model") + "@" + Str(d, "ref") + (d.value("int8", false) ? " int8" : "");
    std::string address = Str(d, "address");
    rows.push_back({Str(d, "name"), model, version.empty() ? "-" : version, address.empty() ? "-" : address,
                    Str(d, "state"), Str(d, "health"), Rate(d), std::to_string(Int(d, "restarts"))});
    if (Str(d, "state") != "SERVING") notes.push_back(Str(d, "name") + ": " + Str(d, "reason"));
  }
  out << FormatTable({"NAME", "MODEL", "VERSION", "ADDRESS", "STATE", "HEALTH", "REQ/S", "RESTARTS"}, rows);
  for (const auto& n : notes) out << "  " << n << "\n";
}

// Polls get_deployment until it serves (0), crash-loops (1) or timeout_s
// passes (kExitTimeout).
int WaitServing(Context& ctx, const std::string& name, double timeout_s, bool as_json) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  json d;
  while (true) {
    auto r = ctx.Call(kCoordinator, "get_deployment", {{"name", name}});
    if (!r.ok()) return Fail(r.status());
    d = (*r)["deployment"];
    std::string state = Str(d, "state");
    if (state == "SERVING") break;
    if (state == "CRASH_LOOP") return Fail(Status::Unavailable("deployment " + name + ": " + Str(d, "reason")));
    if (std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr, "gantry: deployment %s is not serving after %.0f s: %s (%s)\n", name.c_str(), timeout_s,
                   state.c_str(), Str(d, "reason").c_str());
      return kExitTimeout;
    }
    std::this_thread::sleep_for(kPollEvery);
  }
  if (as_json) {
    PrintJson({{"deployment", d}});
    return 0;
  }
  std::string address = Str(d, "address");
  std::cout << "deployment " << name << ": serving " << Str(d, "model") << "@" << Str(d, "ref")
            << (Str(d, "version").empty() ? "" : " (" + Str(d, "version") + ")") << " at " << address << "\n"
            << "  try it:  curl " << address << "/v2/models/" << Str(d, "model") << "\n"
            << "  list:    gantry deployments\n";
  return 0;
}

int Deploy(Context& ctx, const DeployOptions& o) {
  auto [model, ref] = SplitRef(o.model_ref);
  if (model.empty() || ref.empty()) {
    return Fail(Status::InvalidArgument("deploy: model must be MODEL@REF, e.g. mnist@prod (got '" + o.model_ref + "')"));
  }
  // The registry knows whether the ref exists; the coordinator only checks
  // its form. A storage that does not answer is the server's problem to
  // report (it retries), not a reason to refuse here.
  auto version = ctx.Call(kStorage, "get_version", {{"model", model}, {"ref", ref}}, std::chrono::seconds(5));
  if (!version.ok() && version.status().code() != StatusCode::kUnavailable) {
    return Fail(version.status().WithContext("deploy: model " + model + "@" + ref));
  }
  json body = {{"model", model},         {"ref", ref},   {"port", o.port}, {"max_batch", o.max_batch},
               {"max_delay_ms", o.max_delay_ms}, {"int8", o.int8}, {"sample_rate", o.sample_rate}};
  if (!o.name.empty()) body["name"] = o.name;
  auto r = ctx.Call(kCoordinator, "deploy", body);
  if (!r.ok()) return Fail(r.status());
  std::string name = Str((*r)["deployment"], "name");
  if (o.no_wait) {
    if (o.as_json) PrintJson(*r);
    else std::cout << "deployment " << name << ": " << Str((*r)["deployment"], "reason") << "\n";
    return 0;
  }
  return WaitServing(ctx, name, o.timeout, o.as_json);
}

int List(Context& ctx, bool as_json, double rate_window_s) {
  auto r = ctx.Call(kCoordinator, "list_deployments");
  if (!r.ok()) return Fail(r.status());
  json deployments = (*r)["deployments"];
  Probe(deployments, std::chrono::milliseconds(static_cast<int64_t>(rate_window_s * 1000)));
  if (as_json) {
    PrintJson({{"deployments", deployments}});
    return 0;
  }
  RenderDeployments(deployments, std::cout);
  return 0;
}

int Undeploy(Context& ctx, const std::string& name, double timeout_s, bool no_wait) {
  auto r = ctx.Call(kCoordinator, "undeploy", {{"name", name}});
  if (!r.ok()) return Fail(r.status());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (!no_wait) {
    auto d = ctx.Call(kCoordinator, "get_deployment", {{"name", name}});
    if (!d.ok() && d.status().code() == StatusCode::kNotFound) break;
    if (!d.ok()) return Fail(d.status());
    if (std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr, "gantry: deployment %s still stopping after %.0f s: %s\n", name.c_str(), timeout_s,
                   Str((*d)["deployment"], "reason").c_str());
      return kExitTimeout;
    }
    std::this_thread::sleep_for(kPollEvery);
  }
  std::cout << (no_wait ? "undeploying " : "undeployed ") << name << "\n";
  return 0;
}

}  // namespace

void AddDeployCommands(CLI::App& app, Context& ctx, Action& action) {
  auto o = std::make_shared<DeployOptions>();
  auto* deploy = app.add_subcommand("deploy", "Serve a model over HTTP (KServe v2); the coordinator keeps it up");
  deploy->add_option("model", o->model_ref, "MODEL@ALIAS (or @vN, @latest)")->required();
  deploy->add_option("--name", o->name, "Deployment name (default: the model's name)");
  deploy->add_option("--port", o->port, "HTTP port (default 0: pick a free one, then keep it)");
  deploy->add_option("--max-batch", o->max_batch, "Largest batch run at once (default 64)");
  deploy->add_option("--max-delay-ms", o->max_delay_ms, "Longest wait for a batch to fill (default 0)");
  deploy->add_flag("--int8", o->int8, "Serve the int8-optimised version (gantry ckpt optimize --int8)");
  deploy->add_option("--sample-rate", o->sample_rate,
                     "Share of requests whose inputs and predictions go to the monitor for drift (default 0.1)")
      ->check(CLI::Range(0.0, 1.0));
  deploy->add_flag("--no-wait", o->no_wait, "Return once recorded instead of once serving");
  deploy->add_option("--timeout", o->timeout, "Seconds to wait for it to serve (default 120; exit 4)");
  deploy->add_flag("--json", o->as_json, "Print the deployment as JSON");
  deploy->callback([&ctx, &action, o] { action = [&ctx, o] { return Deploy(ctx, *o); }; });

  struct ListOpts {
    bool as_json = false;
    double rate_window = 1;
  };
  auto lo = std::make_shared<ListOpts>();
  auto* list = app.add_subcommand("deployments", "Deployments: address, version, health and request rate");
  list->add_flag("--json", lo->as_json, "Machine-readable output");
  list->add_option("--rate-window", lo->rate_window, "Seconds between the two request counts (0: no rate)");
  list->callback([&ctx, &action, lo] { action = [&ctx, lo] { return List(ctx, lo->as_json, lo->rate_window); }; });

  struct UndeployOpts {
    std::string name;
    double timeout = 30;
    bool no_wait = false;
  };
  auto uo = std::make_shared<UndeployOpts>();
  auto* undeploy = app.add_subcommand("undeploy", "Stop a deployment's server and forget it");
  undeploy->add_option("name", uo->name, "Deployment name")->required();
  undeploy->add_option("--timeout", uo->timeout, "Seconds to wait for it to stop (default 30; exit 4)");
  undeploy->add_flag("--no-wait", uo->no_wait, "Return once asked instead of once stopped");
  undeploy->callback([&ctx, &action, uo] {
    action = [&ctx, uo] { return Undeploy(ctx, uo->name, uo->timeout, uo->no_wait); };
  });
}

}  // namespace gantry::cli
