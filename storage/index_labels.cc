// Index: aliases, tags and retention policies (see index.h).
#include "storage/index.h"

namespace gantry::storage {

Status Index::SetAlias(const std::string& model, const std::string& alias, int64_t version, double now) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "INSERT INTO aliases(model, alias, version, updated_at) VALUES(?1, ?2, ?3, ?4)"
      " ON CONFLICT(model, alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at"));
  return q.Bind(1, model).Bind(2, alias).Bind(3, version).Bind(4, now).Run();
}

Result<std::optional<int64_t>> Index::AliasVersion(const std::string& model, const std::string& alias) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT version FROM aliases WHERE model = ?1 AND alias = ?2"));
  q.Bind(1, model).Bind(2, alias);
  GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<int64_t>();
  return std::optional<int64_t>(q.ColumnInt(0));
}

Result<std::optional<int64_t>> Index::RemoveAlias(const std::string& model, const std::string& alias) {
  GANTRY_ASSIGN_OR_RETURN(std::optional<int64_t> version, AliasVersion(model, alias));
  if (!version) return version;
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("DELETE FROM aliases WHERE model = ?1 AND alias = ?2"));
  GANTRY_RETURN_IF_ERROR(q.Bind(1, model).Bind(2, alias).Run());
  return version;
}

Result<std::map<int64_t, std::vector<std::string>>> Index::AliasesByVersion(const std::string& model) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT version, alias FROM aliases WHERE model = ?1 ORDER BY alias"));
  q.Bind(1, model);
  std::map<int64_t, std::vector<std::string>> out;
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out[q.ColumnInt(0)].push_back(q.ColumnText(1));
  }
  return out;
}

Status Index::AddTag(const std::string& model, int64_t version, const std::string& tag, bool protect, double now) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "INSERT INTO tags(model, version, tag, protect, created_at) VALUES(?1, ?2, ?3, ?4, ?5)"
      " ON CONFLICT(model, version, tag) DO UPDATE SET protect = excluded.protect"));
  return q.Bind(1, model).Bind(2, version).Bind(3, tag).Bind(4, protect ? 1 : 0).Bind(5, now).Run();
}

Result<bool> Index::RemoveTag(const std::string& model, int64_t version, const std::string& tag) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("DELETE FROM tags WHERE model = ?1 AND version = ?2 AND tag = ?3"));
  GANTRY_RETURN_IF_ERROR(q.Bind(1, model).Bind(2, version).Bind(3, tag).Run());
  return db_.Changes() > 0;
}

Result<std::map<int64_t, std::vector<TagRow>>> Index::TagsByVersion(const std::string& model) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT version, tag, protect FROM tags WHERE model = ?1 ORDER BY tag"));
  q.Bind(1, model);
  std::map<int64_t, std::vector<TagRow>> out;
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out[q.ColumnInt(0)].push_back({q.ColumnText(1), q.ColumnInt(2) != 0});
  }
  return out;
}

Result<bool> Index::IsProtected(const std::string& model, int64_t version) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "SELECT 1 FROM aliases WHERE model = ?1 AND version = ?2"
      " UNION ALL SELECT 1 FROM tags WHERE model = ?1 AND version = ?2 AND protect != 0 LIMIT 1"));
  q.Bind(1, model).Bind(2, version);
  return q.Step();
}

Status Index::SetRetention(const std::string& model, const RetentionPolicy& p, double now) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "INSERT INTO retention(model, keep_latest, keep_best, metric, mode, updated_at)"
      " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(model) DO UPDATE SET keep_latest = excluded.keep_latest,"
      " keep_best = excluded.keep_best, metric = excluded.metric, mode = excluded.mode,"
      " updated_at = excluded.updated_at"));
  q.Bind(1, model).Bind(2, p.keep_latest).Bind(3, p.keep_best).Bind(4, p.metric).Bind(5, p.mode).Bind(6, now);
  return q.Run();
}

Status Index::ClearRetention(const std::string& model) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("DELETE FROM retention WHERE model = ?1"));
  return q.Bind(1, model).Run();
}

Result<std::optional<RetentionPolicy>> Index::GetRetention(const std::string& model) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "SELECT keep_latest, keep_best, metric, mode FROM retention WHERE model = ?1"));
  q.Bind(1, model);
  GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<RetentionPolicy>();
  return std::optional<RetentionPolicy>(
      RetentionPolicy{q.ColumnInt(0), q.ColumnInt(1), q.ColumnText(2), q.ColumnText(3)});
}

Result<std::vector<std::string>> Index::ModelsWithRetention() {
  return db_.QueryStrings("SELECT model FROM retention ORDER BY model");
}

}  // namespace gantry::storage
