// Typed readers for request-body fields beyond common/protocol.h's GetString/
// GetInt/GetNumber, and In(), which names the request in a field error:
//   GANTRY_ASSIGN_OR_RETURN(bool force, In(GetBool(body, "force", false), "delete_version"));
//   -> "delete_version: field 'force' must be true or false"
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/protocol.h"

namespace gantry {

// `r`, or its error prefixed with `what` (usually the request type).
template <typename T>
Result<T> In(Result<T> r, const std::string& what) {
  if (!r.ok()) return r.status().WithContext(what);
  return r;
}

// Optional boolean field: `fallback` when absent or null.
Result<bool> GetBool(const json& obj, std::string_view key, bool fallback);
// The `ref` field: a string ("latest", "vN", "N" or an alias) or an
// integer N >= 1, which reads as "vN". `fallback` when absent (nullopt:
// required); `what` names the request in errors.
Result<std::string> GetRef(const json& obj, const std::string& what, std::optional<std::string> fallback);
// {model, ref} of a request, ref defaulting to "latest" (see GetRef); `what`
// names the request in errors.
Result<std::pair<std::string, std::string>> GetModelRef(const json& obj, const std::string& what);

}  // namespace gantry
