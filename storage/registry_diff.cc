// Registry::Diff: which tensors changed between two versions (see registry.h).
#include <map>

#include "storage/checkpoint.h"
#include "storage/registry.h"
#include "storage/tensor_stats.h"

namespace gantry::storage {

const char* TensorChangeName(TensorChange c) {
  switch (c) {
    case TensorChange::kUnchanged: return "unchanged";
    case TensorChange::kChanged: return "changed";
    case TensorChange::kAdded: return "added";
    case TensorChange::kRemoved: return "removed";
    case TensorChange::kRetyped: return "retyped";
  }
  return "unknown";
}

Result<DiffResult> Registry::Diff(const std::string& model_a, const std::string& ref_a, const std::string& model_b,
                                  const std::string& ref_b) {
  GANTRY_ASSIGN_OR_RETURN(int64_t va, Resolve(model_a, ref_a));
  GANTRY_ASSIGN_OR_RETURN(int64_t vb, Resolve(model_b, ref_b));
  GANTRY_ASSIGN_OR_RETURN(LoadedVersion a, Load(model_a, va));
  GANTRY_ASSIGN_OR_RETURN(LoadedVersion b, Load(model_b, vb));
  std::map<std::string, size_t> in_b;
  for (size_t i = 0; i < b.manifest.tensors.size(); ++i) in_b[b.manifest.tensors[i].name] = i;

  DiffResult out;
  out.a = {model_a, va};
  out.b = {model_b, vb};
  out.bytes_total = b.manifest.bytes;
  for (size_t i = 0; i < a.manifest.tensors.size(); ++i) {
    const TensorRecord& ta = a.manifest.tensors[i];
    auto it = in_b.find(ta.name);
    TensorDiff e;
    if (it == in_b.end()) {
      e.tensor = ta;
      e.change = TensorChange::kRemoved;
      out.tensors.push_back(std::move(e));
      ++out.removed;
      continue;
    }
    const TensorRecord& tb = b.manifest.tensors[it->second];
    const auto& da = a.data[i];
    const auto& db = b.data[it->second];
    in_b.erase(it);
    e.tensor = tb;
    if (ta.dtype != tb.dtype || ta.shape != tb.shape) {
      e.change = TensorChange::kRetyped;
      e.was = ta;
      ++out.changed;
      out.bytes_changed += tb.bytes;
    } else if (da == db) {
      e.change = TensorChange::kUnchanged;
      e.shared = !ta.blob.empty() && ta.blob == tb.blob;
      ++out.unchanged;
    } else {
      e.change = TensorChange::kChanged;
      e.stats = CompareTensors(ta.dtype, da, db);
      ++out.changed;
      out.bytes_changed += tb.bytes;
    }
    out.tensors.push_back(std::move(e));
  }
  for (const auto& t : b.manifest.tensors) {
    if (!in_b.count(t.name)) continue;
    TensorDiff e;
    e.tensor = t;
    e.change = TensorChange::kAdded;
    out.tensors.push_back(std::move(e));
    ++out.added;
    out.bytes_changed += t.bytes;
  }
  return out;
}

}  // namespace gantry::storage
