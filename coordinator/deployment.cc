#include "coordinator/deployment.h"

#include <array>
#include <utility>

namespace gantry::coordinator {
namespace {

constexpr std::array<std::pair<DeploymentState, std::string_view>, 5> kStates = {{
    {DeploymentState::kStarting, "STARTING"},
    {DeploymentState::kServing, "SERVING"},
    {DeploymentState::kRestarting, "RESTARTING"},
    {DeploymentState::kCrashLoop, "CRASH_LOOP"},
    {DeploymentState::kStopping, "STOPPING"},
}};

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

// Empty when `s` is a valid name, else what is wrong with it.
std::string NameProblem(const std::string& s) {
  if (s.empty()) return "is empty";
  if (s.size() > 63) return "is longer than 63 characters";
  if (!NameChar(s[0]) || s[0] == '.' || s[0] == '_' || s[0] == '-') return "must start with a letter or digit";
  for (char c : s) {
    if (!NameChar(c)) return std::string("holds '") + c + "'; use letters, digits, '.', '_' and '-'";
  }
  return "";
}

}  // namespace

std::string_view DeploymentStateName(DeploymentState s) {
  for (const auto& [state, name] : kStates) {
    if (state == s) return name;
  }
  return "UNKNOWN";
}

std::optional<DeploymentState> DeploymentStateFromName(std::string_view name) {
  for (const auto& [state, n] : kStates) {
    if (n == name) return state;
  }
  return std::nullopt;
}

Status ParseModelRef(const std::string& model_ref, std::string* model, std::string* ref) {
  auto at = model_ref.find('@');
  if (at == std::string::npos || at == 0 || at + 1 == model_ref.size() ||
      model_ref.find('@', at + 1) != std::string::npos) {
    return Status::InvalidArgument("deploy: model must be MODEL@REF, e.g. mnist@prod or mnist@v3 (got '" +
                                   model_ref + "')");
  }
  *model = model_ref.substr(0, at);
  *ref = model_ref.substr(at + 1);
  return Status::Ok();
}

Status DeploymentSpec::Validate() {
  if (std::string p = NameProblem(model); !p.empty()) {
    return Status::InvalidArgument("deploy: model '" + model + "' " + p);
  }
  if (std::string p = NameProblem(ref); !p.empty()) {
    return Status::InvalidArgument("deploy: ref '" + ref + "' " + p + " (an alias, vN or latest)");
  }
  if (name.empty()) name = model;
  if (std::string p = NameProblem(name); !p.empty()) {
    return Status::InvalidArgument("deploy: name '" + name + "' " + p);
  }
  if (port < 0 || port > 65535) {
    return Status::InvalidArgument("deploy: port must be 0..65535 (0 = pick a free one; got " +
                                   std::to_string(port) + ")");
  }
  if (port > 0 && port < 1024) {
    return Status::InvalidArgument("deploy: port " + std::to_string(port) +
                                   " is privileged; use 1024..65535 or 0 (pick one)");
  }
  if (max_batch < 1 || max_batch > 4096) {
    return Status::InvalidArgument("deploy: max_batch must be 1..4096 (got " + std::to_string(max_batch) + ")");
  }
  if (max_delay_ms < 0 || max_delay_ms > 10000) {
    return Status::InvalidArgument("deploy: max_delay_ms must be 0..10000 (got " + std::to_string(max_delay_ms) +
                                   ")");
  }
  if (!(sample_rate >= 0 && sample_rate <= 1)) {
    return Status::InvalidArgument("deploy: sample_rate must be 0..1 (got " + std::to_string(sample_rate) +
                                   "; 0.1 sends one request in ten to the monitor's drift windows)");
  }
  return Status::Ok();
}

}  // namespace gantry::coordinator
