#include "common/fields.h"

namespace gantry {

Result<bool> GetBool(const json& obj, std::string_view key, bool fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return Status::InvalidArgument("field '" + std::string(key) + "' must be true or false");
  return it->get<bool>();
}

Result<std::pair<std::string, std::string>> GetModelRef(const json& obj, const std::string& what) {
  GANTRY_ASSIGN_OR_RETURN(std::string model, In(GetString(obj, "model"), what));
  std::string ref = "latest";
  if (auto it = obj.find("ref"); it != obj.end() && it->is_number_integer()) {
    ref = std::to_string(it->get<int64_t>());
  } else {
    GANTRY_ASSIGN_OR_RETURN(ref, In(GetString(obj, "ref", "latest"), what));
  }
  return std::make_pair(std::move(model), std::move(ref));
}

}  // namespace gantry
