#include "common/fields.h"

namespace gantry {

Result<bool> GetBool(const json& obj, std::string_view key, bool fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return Status::InvalidArgument("field '" + std::string(key) + "' must be true or false");
  return it->get<bool>();
}

Result<std::string> GetRef(const json& obj, const std::string& what, std::optional<std::string> fallback) {
  auto it = obj.find("ref");
  if (it == obj.end() && fallback) return *fallback;
  if (it != obj.end() && it->is_number_integer()) {
    const int64_t n = it->get<int64_t>();
    if (n < 1) {
      return Status::InvalidArgument(what + ": field 'ref' must be >= 1 as a number (got " + std::to_string(n) + ")");
    }
    return "v" + std::to_string(n);
  }
  if (it != obj.end() && !it->is_string()) {
    return Status::InvalidArgument(what + ": field 'ref' must be a string (latest, vN, an alias) or an integer");
  }
  return In(GetString(obj, "ref"), what);
}

Result<std::pair<std::string, std::string>> GetModelRef(const json& obj, const std::string& what) {
  GANTRY_ASSIGN_OR_RETURN(std::string model, In(GetString(obj, "model"), what));
  GANTRY_ASSIGN_OR_RETURN(std::string ref, GetRef(obj, what, "latest"));
  return std::make_pair(std::move(model), std::move(ref));
}

}  // namespace gantry
