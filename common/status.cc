#include "common/status.h"

#include <array>

namespace gantry {
namespace {
constexpr std::array<std::string_view, 11> kNames = {
    "ok",          "invalid_argument", "not_found", "already_exists",
    "failed_precondition", "resource_exhausted", "unavailable",
    "deadline_exceeded",   "aborted",   "corruption", "internal",
};
}  // namespace

std::string_view StatusCodeName(StatusCode code) {
  auto i = static_cast<size_t>(code);
  return i < kNames.size() ? kNames[i] : "internal";
}

StatusCode StatusCodeFromName(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) return static_cast<StatusCode>(i);
  }
  return StatusCode::kInternal;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out(StatusCodeName(code_));
  out += ": ";
  out += message_;
  return out;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  return Status(code_, std::string(context) + ": " + message_);
}

Status AnnotateStatus(Status s, const char* file, int line) {
  if (s.ok()) return s;
  return Status(s.code(), s.message() + " [" + file + ":" + std::to_string(line) + "]");
}

}  // namespace gantry
