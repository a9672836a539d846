#include "storage/storage_json.h"

namespace gantry::storage {
namespace {

json Names(const std::vector<std::string>& names) {
  json out = json::array();
  for (const auto& n : names) out.push_back(n);
  return out;
}

json TagsJson(const std::vector<TagRow>& tags) {
  json out = json::array();
  for (const auto& t : tags) out.push_back({{"tag", t.tag}, {"protect", t.protect}});
  return out;
}

json PolicyOrNull(const std::optional<RetentionPolicy>& p) { return p ? ToJson(*p) : json(nullptr); }

json LineageEntry(const VersionRow& r) {
  const Provenance& p = r.prov;
  json parent = p.has_parent() ? json{{"model", p.parent_model}, {"version", p.parent_version}} : json(nullptr);
  return {{"model", p.model},     {"version", r.version},   {"job_id", p.job_id},
          {"attempt", p.attempt}, {"step", p.step},         {"epoch", p.epoch},
          {"metrics", p.metrics}, {"created_at", p.created_at},
          {"data_fingerprint", p.data_fingerprint}, {"parent", parent}};
}

json Describe(const TensorRecord& t) {
  return {{"name", t.name}, {"dtype", DTypeName(t.dtype)}, {"shape", t.shape}, {"bytes", t.bytes}};
}

json ProblemsJson(const std::vector<FsckProblem>& problems) {
  json out = json::array();
  for (const auto& p : problems) {
    json j = {{"kind", p.kind}, {"path", p.path}, {"detail", p.detail}};
    if (!p.model.empty()) j["model"] = p.model;
    if (p.version > 0) j["version"] = p.version;
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

json ToJson(const SaveResult& r) {
  return {{"model", r.model},           {"version", r.version},
          {"path", r.path},             {"bytes", r.bytes},
          {"bytes_written", r.bytes_written}, {"tensors_shared", r.tensors_shared},
          {"expired", r.expired.empty() ? json::array() : json(r.expired)},
          {"deduplicated", r.deduplicated}};
}

json ToJson(const VersionList& r) {
  json versions = json::array();
  for (const auto& v : r.versions) {
    const Provenance& p = v.row.prov;
    versions.push_back({{"version", v.row.version},
                        {"job_id", p.job_id},
                        {"attempt", p.attempt},
                        {"step", p.step},
                        {"epoch", p.epoch},
                        {"metrics", p.metrics},
                        {"bytes", v.row.bytes},
                        {"bytes_written", v.row.bytes_written},
                        {"path", v.row.path},
                        {"created_at", p.created_at},
                        {"aliases", Names(v.aliases)},
                        {"tags", TagsJson(v.tags)}});
  }
  return {{"model", r.model}, {"versions", std::move(versions)}, {"retention", PolicyOrNull(r.retention)}};
}

json ToJson(const std::vector<ModelInfo>& models) {
  json out = json::array();
  for (const auto& m : models) {
    out.push_back({{"name", m.name}, {"versions", m.versions}, {"latest", m.latest},
                   {"bytes_written", m.bytes_written}});
  }
  return {{"models", std::move(out)}};
}

json ToJson(const VersionDetail& r) {
  json out = r.manifest.ToJson();
  if (r.manifest.format == 1) {
    // Keep what format 1 recorded rather than the defaults of format 2.
    out.erase("hash_algorithm");
  }
  out["path"] = r.path;
  return out;
}

json ToJson(const ShowResult& r) {
  json out = ToJson(r.detail);
  out["aliases"] = Names(r.aliases);
  out["tags"] = TagsJson(r.tags);
  out["protected"] = r.is_protected;
  out["bytes_written"] = r.bytes_written;
  return out;
}

json ToJson(const LineageInfo& r) {
  json out = LineageEntry(r.version);
  json ancestors = json::array();
  for (const auto& a : r.ancestors) {
    if (!a.row) {
      ancestors.push_back({{"model", a.model}, {"version", a.version}, {"exists", false}});
      continue;
    }
    json e = LineageEntry(*a.row);
    e["exists"] = true;
    ancestors.push_back(std::move(e));
  }
  out["ancestors"] = std::move(ancestors);
  return out;
}

json ToJson(const DiffResult& r) {
  json tensors = json::array();
  for (const auto& t : r.tensors) {
    json e = Describe(t.tensor);
    e["status"] = TensorChangeName(t.change);
    if (t.change == TensorChange::kUnchanged) e["shared"] = t.shared;
    if (t.stats) e["stats"] = ToJson(*t.stats);
    if (t.was) e["was"] = Describe(*t.was);
    tensors.push_back(std::move(e));
  }
  return {{"a", {{"model", r.a.model}, {"version", r.a.version}}},
          {"b", {{"model", r.b.model}, {"version", r.b.version}}},
          {"summary",
           {{"changed", r.changed}, {"unchanged", r.unchanged}, {"added", r.added}, {"removed", r.removed},
            {"bytes_changed", r.bytes_changed}, {"bytes_total", r.bytes_total}}},
          {"tensors", std::move(tensors)}};
}

json ToJson(const DeleteResult& r) {
  return {{"model", r.model}, {"version", r.version}, {"bytes_freed", r.bytes_freed}};
}

json ToJson(const GcReport& r) {
  json expired = json::array();
  for (const auto& e : r.expired) expired.push_back({{"model", e.model}, {"versions", e.versions}});
  return {{"dry_run", r.dry_run},
          {"expired", std::move(expired)},
          {"paths_deleted", r.paths_deleted},
          {"packs_compacted", r.packs_compacted},
          {"bytes_freed", r.bytes_freed},
          {"swept", ToJson(r.swept)}};
}

json ToJson(const FsckReport& r) {
  json repaired = json::array();
  for (const auto& a : r.repaired) {
    json j = {{"action", a.action}};
    if (!a.model.empty()) j["model"] = a.model;
    if (a.version > 0) j["version"] = a.version;
    if (!a.path.empty()) j["path"] = a.path;
    if (a.paths > 0) j["paths"] = a.paths;
    repaired.push_back(std::move(j));
  }
  return {{"ok", r.ok},
          {"versions_checked", r.versions_checked},
          {"blobs_checked", r.blobs_checked},
          {"packs_checked", r.packs_checked},
          {"bytes_checked", r.bytes_checked},
          {"problems", ProblemsJson(r.problems)},
          {"repaired", std::move(repaired)},
          {"remaining", ProblemsJson(r.remaining)}};
}

json ToJson(const RetentionPolicy& p) {
  return {{"keep_latest", p.keep_latest}, {"keep_best", p.keep_best}, {"metric", p.metric}, {"mode", p.mode}};
}

json ToJson(const DiffStats& s) {
  return {{"elements", s.elements},
          {"changed", s.changed},
          {"changed_fraction", s.elements ? static_cast<double>(s.changed) / static_cast<double>(s.elements) : 0.0},
          {"max_abs_diff", s.max_abs},
          {"l2_diff", s.l2_diff},
          {"rel_l2", s.l2_a > 0 ? s.l2_diff / s.l2_a : (s.l2_diff > 0 ? 1.0 : 0.0)}};
}

json ToJson(const SweepReport& s) { return {{"removed", s.removed}, {"quarantined", s.quarantined}}; }

json SetAliasJson(const AliasChange& r) {
  return {{"model", r.model}, {"alias", r.alias}, {"version", r.version},
          {"previous", r.previous ? json(*r.previous) : json(nullptr)}};
}

json RemoveAliasJson(const AliasChange& r) { return {{"model", r.model}, {"alias", r.alias}, {"version", r.version}}; }

json TagJson(const TagChange& r) {
  return {{"model", r.model}, {"version", r.version}, {"tag", r.tag}, {"protect", r.protect}};
}

json UntagJson(const TagChange& r) { return {{"model", r.model}, {"version", r.version}, {"tag", r.tag}}; }

json SetRetentionJson(const RetentionInfo& r) {
  return {{"model", r.model}, {"retention", PolicyOrNull(r.retention)},
          {"expired", r.expired.empty() ? json::array() : json(r.expired)}};
}

json GetRetentionJson(const RetentionInfo& r) { return {{"model", r.model}, {"retention", PolicyOrNull(r.retention)}}; }

}  // namespace gantry::storage
