#include "storage/index.h"

namespace gantry::storage {
namespace {

// Append only: a shipped entry is never edited (Db::Migrate runs the ones a
// database has not seen yet, each in its own transaction).
const std::vector<std::string> kMigrations = {
    // 1: versions (format 1: one tensors.bin per version).
    R"sql(
CREATE TABLE models(
  name TEXT PRIMARY KEY,
  created_at REAL NOT NULL
);
CREATE TABLE versions(
  model TEXT NOT NULL REFERENCES models(name),
  version INTEGER NOT NULL,
  job_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  step INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  metrics_json TEXT NOT NULL,
  meta_json TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  path TEXT NOT NULL,
  created_at REAL NOT NULL,
  PRIMARY KEY(model, version)
);
)sql",
    // 2: deduplicated blobs in packs, lineage, aliases, tags, retention,
    //    two-phase GC.
    R"sql(
ALTER TABLE models ADD COLUMN next_version INTEGER NOT NULL DEFAULT 1;
UPDATE models SET next_version =
  1 + COALESCE((SELECT MAX(version) FROM versions v WHERE v.model = models.name), 0);
ALTER TABLE versions ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
ALTER TABLE versions ADD COLUMN bytes_written INTEGER NOT NULL DEFAULT 0;
ALTER TABLE versions ADD COLUMN parent_model TEXT NOT NULL DEFAULT '';
ALTER TABLE versions ADD COLUMN parent_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE versions ADD COLUMN data_fingerprint TEXT NOT NULL DEFAULT '';
UPDATE versions SET bytes_written = bytes;
CREATE TABLE packs(
  name TEXT PRIMARY KEY,
  bytes INTEGER NOT NULL,
  created_at REAL NOT NULL
);
CREATE TABLE blobs(
  key TEXT PRIMARY KEY,
  hash TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  pack TEXT NOT NULL REFERENCES packs(name),
  pack_offset INTEGER NOT NULL,
  created_at REAL NOT NULL
);
CREATE INDEX blobs_by_hash ON blobs(hash);
CREATE INDEX blobs_by_pack ON blobs(pack);
CREATE TABLE version_tensors(
  model TEXT NOT NULL,
  version INTEGER NOT NULL,
  position INTEGER NOT NULL,
  name TEXT NOT NULL,
  dtype TEXT NOT NULL,
  shape_json TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  hash TEXT NOT NULL,
  blob TEXT NOT NULL REFERENCES blobs(key),
  PRIMARY KEY(model, version, name),
  FOREIGN KEY(model, version) REFERENCES versions(model, version)
);
CREATE INDEX version_tensors_by_blob ON version_tensors(blob);
CREATE TABLE aliases(
  model TEXT NOT NULL,
  alias TEXT NOT NULL,
  version INTEGER NOT NULL,
  updated_at REAL NOT NULL,
  PRIMARY KEY(model, alias),
  FOREIGN KEY(model, version) REFERENCES versions(model, version)
);
CREATE TABLE tags(
  model TEXT NOT NULL,
  version INTEGER NOT NULL,
  tag TEXT NOT NULL,
  protect INTEGER NOT NULL,
  created_at REAL NOT NULL,
  PRIMARY KEY(model, version, tag),
  FOREIGN KEY(model, version) REFERENCES versions(model, version)
);
CREATE TABLE retention(
  model TEXT PRIMARY KEY REFERENCES models(name),
  keep_latest INTEGER NOT NULL,
  keep_best INTEGER NOT NULL,
  metric TEXT NOT NULL,
  mode TEXT NOT NULL,
  updated_at REAL NOT NULL
);
CREATE TABLE pending_deletes(
  path TEXT PRIMARY KEY,
  created_at REAL NOT NULL
);
)sql",
    // 3: client request ids of saves and imports, so a retried save finds
    //    its version instead of committing a second one. Kept when the
    //    version is deleted (a late retry is then refused, not re-saved).
    R"sql(
CREATE TABLE save_requests(
  request_id TEXT PRIMARY KEY,
  model TEXT NOT NULL,
  version INTEGER NOT NULL,
  created_at REAL NOT NULL
);
)sql",
};

// A JSON column that no longer parses as an object means the index was
// damaged outside Gantry: say so instead of standing in an empty object.
Result<json> ParseStored(const std::string& text, const VersionRow& row, const char* column) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Corruption("registry index: versions." + std::string(column) + " of " + row.prov.model +
                              " v" + std::to_string(row.version) +
                              " is not a JSON object; restore registry.db from a backup or run "
                              "`gantry ckpt fsck`");
  }
  return j;
}

constexpr const char* kVersionColumns =
    "model, version, job_id, attempt, step, epoch, metrics_json, meta_json, bytes, bytes_written,"
    " path, created_at, format, parent_model, parent_version, data_fingerprint";

Result<VersionRow> ReadVersion(const sql::Statement& q) {
  VersionRow r;
  Provenance& p = r.prov;
  p.model = q.ColumnText(0);
  r.version = q.ColumnInt(1);
  p.job_id = q.ColumnText(2);
  p.attempt = q.ColumnInt(3);
  p.step = q.ColumnInt(4);
  p.epoch = q.ColumnInt(5);
  r.bytes = static_cast<uint64_t>(q.ColumnInt(8));
  r.bytes_written = static_cast<uint64_t>(q.ColumnInt(9));
  r.path = q.ColumnText(10);
  p.created_at = q.ColumnDouble(11);
  r.format = static_cast<int>(q.ColumnInt(12));
  p.parent_model = q.ColumnText(13);
  p.parent_version = q.ColumnInt(14);
  p.data_fingerprint = q.ColumnText(15);
  GANTRY_ASSIGN_OR_RETURN(p.metrics, ParseStored(q.ColumnText(6), r, "metrics_json"));
  GANTRY_ASSIGN_OR_RETURN(p.meta, ParseStored(q.ColumnText(7), r, "meta_json"));
  return r;
}

Result<std::vector<BlobRow>> QueryBlobs(sql::Statement& q) {
  std::vector<BlobRow> out;
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back({q.ColumnText(0), q.ColumnText(1), static_cast<uint64_t>(q.ColumnInt(2)), q.ColumnText(3),
                   static_cast<uint64_t>(q.ColumnInt(4))});
  }
  return out;
}

}  // namespace

Result<Index> Index::Open(const std::string& path) {
  // durable: the COMMIT is what makes a version exist, so it must reach disk.
  GANTRY_ASSIGN_OR_RETURN(sql::Db db, sql::Db::Open(path, /*durable=*/true));
  GANTRY_RETURN_IF_ERROR(db.Migrate(kMigrations).WithContext(path));
  return Index(std::move(db));
}

Status Index::EnsureModel(const std::string& model, double now) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "INSERT INTO models(name, created_at, next_version) VALUES(?1, ?2, 1)"
      " ON CONFLICT(name) DO NOTHING"));
  return q.Bind(1, model).Bind(2, now).Run();
}

Result<bool> Index::ModelExists(const std::string& model) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT 1 FROM models WHERE name = ?1"));
  q.Bind(1, model);
  return q.Step();
}

Result<int64_t> Index::NextVersion(const std::string& model) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT next_version FROM models WHERE name = ?1"));
  q.Bind(1, model);
  GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? q.ColumnInt(0) : 1;
}

Status Index::SetNextVersion(const std::string& model, int64_t next) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("UPDATE models SET next_version = ?2 WHERE name = ?1"));
  return q.Bind(1, model).Bind(2, next).Run();
}

Result<std::vector<ModelInfo>> Index::ListModels() {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "SELECT m.name, COUNT(v.version), COALESCE(MAX(v.version), 0), COALESCE(SUM(v.bytes_written), 0)"
      " FROM models m LEFT JOIN versions v ON v.model = m.name GROUP BY m.name ORDER BY m.name"));
  std::vector<ModelInfo> models;
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    models.push_back({q.ColumnText(0), q.ColumnInt(1), q.ColumnInt(2), static_cast<uint64_t>(q.ColumnInt(3))});
  }
  return models;
}

Status Index::InsertVersion(const VersionRow& r) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(std::string("INSERT INTO versions(") + kVersionColumns +
      ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"));
  const Provenance& p = r.prov;
  q.Bind(1, p.model).Bind(2, r.version).Bind(3, p.job_id).Bind(4, p.attempt).Bind(5, p.step);
  q.Bind(6, p.epoch).Bind(7, DumpJson(p.metrics)).Bind(8, DumpJson(p.meta));
  q.Bind(9, static_cast<int64_t>(r.bytes)).Bind(10, static_cast<int64_t>(r.bytes_written));
  q.Bind(11, r.path).Bind(12, p.created_at).Bind(13, r.format).Bind(14, p.parent_model);
  q.Bind(15, p.parent_version).Bind(16, p.data_fingerprint);
  return q.Run();
}

Status Index::InsertTensors(const std::string& model, int64_t version, const std::vector<TensorRecord>& tensors) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "INSERT INTO version_tensors(model, version, position, name, dtype, shape_json, bytes, hash, blob)"
      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorRecord& t = tensors[i];
    q.Bind(1, model).Bind(2, version).Bind(3, static_cast<int64_t>(i)).Bind(4, t.name);
    q.Bind(5, DTypeName(t.dtype)).Bind(6, json(t.shape).dump()).Bind(7, static_cast<int64_t>(t.bytes));
    q.Bind(8, t.hash).Bind(9, t.blob);
    GANTRY_RETURN_IF_ERROR(q.Run());
    GANTRY_RETURN_IF_ERROR(q.Reset());
  }
  return Status::Ok();
}

Result<std::vector<VersionRow>> Index::QueryVersions(const std::string& where, const std::string& model) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(std::string("SELECT ") + kVersionColumns + " FROM versions " +
                                              where + " ORDER BY model, version"));
  if (!model.empty()) q.Bind(1, model);
  std::vector<VersionRow> out;
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    GANTRY_ASSIGN_OR_RETURN(auto v, ReadVersion(q));
    out.push_back(std::move(v));
  }
  return out;
}

Result<std::optional<VersionRow>> Index::GetVersion(const std::string& model, int64_t version) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(std::string("SELECT ") + kVersionColumns +
                                              " FROM versions WHERE model = ?1 AND version = ?2"));
  q.Bind(1, model).Bind(2, version);
  GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<VersionRow>();
  GANTRY_ASSIGN_OR_RETURN(auto v, ReadVersion(q));
  return std::optional<VersionRow>(std::move(v));
}

Status Index::RecordSaveRequest(const std::string& request_id, const std::string& model, int64_t version,
                                double now) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "INSERT INTO save_requests(request_id, model, version, created_at) VALUES (?1, ?2, ?3, ?4)"));
  q.Bind(1, request_id).Bind(2, model).Bind(3, version).Bind(4, now);
  return q.Run().WithContext("recording save request " + request_id);
}

Result<std::optional<SaveRequestRow>> Index::SaveForRequest(const std::string& request_id) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT model, version FROM save_requests WHERE request_id = ?1"));
  q.Bind(1, request_id);
  GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<SaveRequestRow>();
  return std::optional<SaveRequestRow>(SaveRequestRow{q.ColumnText(0), q.ColumnInt(1)});
}

Result<std::vector<VersionRow>> Index::Versions(const std::string& model) {
  return QueryVersions("WHERE model = ?1", model);
}

Result<std::vector<VersionRow>> Index::AllVersions() { return QueryVersions("", ""); }

Result<int64_t> Index::LatestVersion(const std::string& model) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT COALESCE(MAX(version), 0) FROM versions WHERE model = ?1"));
  q.Bind(1, model);
  GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? q.ColumnInt(0) : 0;
}

Result<std::vector<TensorRecord>> Index::Tensors(const std::string& model, int64_t version) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "SELECT name, dtype, shape_json, bytes, hash, blob FROM version_tensors"
      " WHERE model = ?1 AND version = ?2 ORDER BY position"));
  q.Bind(1, model).Bind(2, version);
  std::vector<TensorRecord> out;
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    TensorRecord t;
    t.name = q.ColumnText(0);
    t.dtype = ParseDType(q.ColumnText(1)).value_or(DType::kUInt8);
    json shape = json::parse(q.ColumnText(2), nullptr, false);
    if (shape.is_array()) {
      for (const auto& d : shape) t.shape.push_back(d.is_number_integer() ? d.get<int64_t>() : -1);
    }
    t.bytes = static_cast<uint64_t>(q.ColumnInt(3));
    t.hash = q.ColumnText(4);
    t.blob = q.ColumnText(5);
    out.push_back(std::move(t));
  }
  return out;
}

Status Index::DeleteVersionRows(const std::string& model, int64_t version) {
  for (const char* sql : {"DELETE FROM version_tensors WHERE model = ?1 AND version = ?2",
                          "DELETE FROM tags WHERE model = ?1 AND version = ?2",
                          "DELETE FROM aliases WHERE model = ?1 AND version = ?2",
                          "DELETE FROM versions WHERE model = ?1 AND version = ?2"}) {
    GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(sql));
    GANTRY_RETURN_IF_ERROR(q.Bind(1, model).Bind(2, version).Run());
  }
  return Status::Ok();
}

constexpr const char* kBlobColumns = "key, hash, bytes, pack, pack_offset";

Status Index::InsertPack(const std::string& name, uint64_t bytes, double now) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("INSERT INTO packs(name, bytes, created_at) VALUES(?1, ?2, ?3)"));
  return q.Bind(1, name).Bind(2, static_cast<int64_t>(bytes)).Bind(3, now).Run();
}

Result<std::vector<PackRow>> Index::AllPacks() {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "SELECT p.name, p.bytes, COALESCE(SUM(b.bytes), 0), COUNT(b.key) FROM packs p"
      " LEFT JOIN blobs b ON b.pack = p.name GROUP BY p.name ORDER BY p.name"));
  std::vector<PackRow> out;
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back({q.ColumnText(0), static_cast<uint64_t>(q.ColumnInt(1)), static_cast<uint64_t>(q.ColumnInt(2)),
                   q.ColumnInt(3)});
  }
  return out;
}

Status Index::DeletePack(const std::string& name) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("DELETE FROM packs WHERE name = ?1"));
  return q.Bind(1, name).Run();
}

Status Index::InsertBlob(const BlobRow& b, double now) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "INSERT INTO blobs(key, hash, bytes, pack, pack_offset, created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"));
  q.Bind(1, b.key).Bind(2, b.hash).Bind(3, static_cast<int64_t>(b.bytes)).Bind(4, b.pack);
  return q.Bind(5, static_cast<int64_t>(b.offset)).Bind(6, now).Run();
}

Status Index::MoveBlob(const std::string& key, const std::string& pack, uint64_t offset) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("UPDATE blobs SET pack = ?2, pack_offset = ?3 WHERE key = ?1"));
  return q.Bind(1, key).Bind(2, pack).Bind(3, static_cast<int64_t>(offset)).Run();
}

Result<std::optional<BlobRow>> Index::GetBlob(const std::string& key) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(std::string("SELECT ") + kBlobColumns + " FROM blobs WHERE key = ?1"));
  q.Bind(1, key);
  GANTRY_ASSIGN_OR_RETURN(auto rows, QueryBlobs(q));
  if (rows.empty()) return std::optional<BlobRow>();
  return std::optional<BlobRow>(std::move(rows[0]));
}

Result<std::vector<BlobRow>> Index::BlobsWithHash(const std::string& hash) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(std::string("SELECT ") + kBlobColumns +
                                              " FROM blobs WHERE hash = ?1 ORDER BY key"));
  q.Bind(1, hash);
  return QueryBlobs(q);
}

Result<std::vector<BlobRow>> Index::BlobsInPack(const std::string& pack) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(std::string("SELECT ") + kBlobColumns +
                                              " FROM blobs WHERE pack = ?1 ORDER BY pack_offset"));
  q.Bind(1, pack);
  return QueryBlobs(q);
}

Result<std::vector<BlobRow>> Index::AllBlobs() {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(std::string("SELECT ") + kBlobColumns + " FROM blobs ORDER BY key"));
  return QueryBlobs(q);
}

Result<std::vector<BlobRow>> Index::UnreferencedBlobs() {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(std::string("SELECT ") + kBlobColumns +
      " FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM version_tensors t WHERE t.blob = b.key) ORDER BY key"));
  return QueryBlobs(q);
}

Status Index::DeleteBlob(const std::string& key) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("DELETE FROM blobs WHERE key = ?1"));
  return q.Bind(1, key).Run();
}

Status Index::AddPendingDelete(const std::string& rel_path, double now) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "INSERT INTO pending_deletes(path, created_at) VALUES(?1, ?2) ON CONFLICT(path) DO NOTHING"));
  return q.Bind(1, rel_path).Bind(2, now).Run();
}

Result<std::vector<std::string>> Index::PendingDeletes() {
  return db_.QueryStrings("SELECT path FROM pending_deletes ORDER BY path");
}

Status Index::ClearPendingDelete(const std::string& rel_path) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("DELETE FROM pending_deletes WHERE path = ?1"));
  return q.Bind(1, rel_path).Run();
}

}  // namespace gantry::storage
