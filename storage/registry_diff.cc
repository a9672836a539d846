// Registry::Diff: which tensors changed between two versions (see registry.h).
#include <map>

#include "storage/checkpoint.h"
#include "storage/registry.h"
#include "storage/tensor_stats.h"

namespace gantry::storage {

Result<json> Registry::Diff(const std::string& model_a, const std::string& ref_a, const std::string& model_b,
                            const std::string& ref_b) {
  GANTRY_ASSIGN_OR_RETURN(int64_t va, Resolve(model_a, ref_a));
  GANTRY_ASSIGN_OR_RETURN(int64_t vb, Resolve(model_b, ref_b));
  GANTRY_ASSIGN_OR_RETURN(LoadedVersion a, Load(model_a, va));
  GANTRY_ASSIGN_OR_RETURN(LoadedVersion b, Load(model_b, vb));
  std::map<std::string, size_t> in_b;
  for (size_t i = 0; i < b.manifest.tensors.size(); ++i) in_b[b.manifest.tensors[i].name] = i;

  json tensors = json::array();
  int64_t changed = 0, unchanged = 0, added = 0, removed = 0;
  uint64_t bytes_changed = 0;
  auto describe = [](const TensorRecord& t) {
    return json{{"name", t.name}, {"dtype", DTypeName(t.dtype)}, {"shape", t.shape}, {"bytes", t.bytes}};
  };
  for (size_t i = 0; i < a.manifest.tensors.size(); ++i) {
    const TensorRecord& ta = a.manifest.tensors[i];
    auto it = in_b.find(ta.name);
    if (it == in_b.end()) {
      json e = describe(ta);
      e["status"] = "removed";
      tensors.push_back(std::move(e));
      ++removed;
      continue;
    }
    const TensorRecord& tb = b.manifest.tensors[it->second];
    const auto& da = a.data[i];
    const auto& db = b.data[it->second];
    in_b.erase(it);
    json e = describe(tb);
    if (ta.dtype != tb.dtype || ta.shape != tb.shape) {
      e["status"] = "retyped";
      e["was"] = describe(ta);
      ++changed;
      bytes_changed += tb.bytes;
    } else if (da == db) {
      e["status"] = "unchanged";
      e["shared"] = !ta.blob.empty() && ta.blob == tb.blob;
      ++unchanged;
    } else {
      e["status"] = "changed";
      e["stats"] = CompareTensors(ta.dtype, da, db).ToJson();
      ++changed;
      bytes_changed += tb.bytes;
    }
    tensors.push_back(std::move(e));
  }
  for (const auto& t : b.manifest.tensors) {
    if (!in_b.count(t.name)) continue;
    json e = describe(t);
    e["status"] = "added";
    tensors.push_back(std::move(e));
    ++added;
    bytes_changed += t.bytes;
  }
  return json{{"a", {{"model", model_a}, {"version", va}}},
              {"b", {{"model", model_b}, {"version", vb}}},
              {"summary",
               {{"changed", changed}, {"unchanged", unchanged}, {"added", added}, {"removed", removed},
                {"bytes_changed", bytes_changed}, {"bytes_total", b.manifest.bytes}}},
              {"tensors", std::move(tensors)}};
}

}  // namespace gantry::storage
