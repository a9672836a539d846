#include "cli/context.h"

#include "cli/render.h"
#include "common/curve.h"

#include <cstdio>
#include <ctime>
#include <iostream>

namespace gantry::cli {

Result<json> Context::Call(const std::string& service, const std::string& type, const json& body,
                           std::chrono::milliseconds timeout) {
  RpcClient::CallOptions o;
  o.timeout = timeout;
  return Call(service, type, body, o);
}

Result<json> Context::Call(const std::string& service, const std::string& type, const json& body,
                           const RpcClient::CallOptions& options) {
  auto& client = clients_[service];
  if (!client) {
    GANTRY_ASSIGN_OR_RETURN(std::string ep, dir().Endpoint(service, "api"));
    GANTRY_RETURN_IF_ERROR(UseKeys(service).status());
    client = std::make_unique<RpcClient>(zmq_, ep);
  }
  auto r = client->Call(type, body, options);
  if (!r.ok() && r.status().code() == StatusCode::kUnavailable) {
    return Status::Unavailable("the " + service + " did not answer (" + r.status().message() +
                               "); check `gantry status`");
  }
  return r;
}

Result<std::string> Context::UseKeys(const std::string& service) {
  if (keys_chosen_) return keys_dir_;
  const DataDir d = dir();
  GANTRY_ASSIGN_OR_RETURN(CurveSettings s, ResolveClientCurve(keys_flag, d.root(), RunFileAuth(d.RunFile(service))));
  keys_dir_ = s.enabled ? s.keys_dir : "";
  // Only once a choice is certain: a service not running yet says nothing.
  keys_chosen_ = s.enabled || d.ReadServiceInfo(service).ok();
  SetProcessCurve(std::move(s));
  return keys_dir_;
}

int Fail(const Status& s) {
  std::fprintf(stderr, "gantry: %s\n", s.message().c_str());
  return 1;
}

void PrintJson(const json& j) { std::cout << j.dump(2) << std::endl; }

std::string FormatTime(double t) {
  if (t <= 0) return "-";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  localtime_r(&tt, &tm);
  char buf[32];
  std::time_t now = std::time(nullptr);
  std::strftime(buf, sizeof buf, (now - tt < 20 * 3600) ? "%H:%M:%S" : "%Y-%m-%d %H:%M", &tm);
  return buf;
}

std::string FormatDuration(double s) {
  if (s < 0 || s != s) return "-";
  long total = static_cast<long>(s + 0.5);
  char buf[32];
  if (total < 60) std::snprintf(buf, sizeof buf, "%lds", total);
  else if (total < 3600) std::snprintf(buf, sizeof buf, "%ldm%02lds", total / 60, total % 60);
  else std::snprintf(buf, sizeof buf, "%ldh%02ldm", total / 3600, (total % 3600) / 60);
  return buf;
}

void PrintTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::cout << FormatTable(header, rows);
  std::cout.flush();
}

int ExitCodeForState(const std::string& state) {
  if (state == "SUCCEEDED") return kExitSucceeded;
  if (state == "CANCELLED") return kExitCancelled;
  return kExitFailed;
}

bool IsTerminalState(const std::string& state) {
  return state == "SUCCEEDED" || state == "FAILED" || state == "CANCELLED";
}

}  // namespace gantry::cli
