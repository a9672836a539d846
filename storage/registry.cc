#include "storage/registry.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "common/fs.h"
#include "common/ids.h"
#include "storage/staging_dir.h"
#include "storage/tensor_file.h"

namespace gantry::storage {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kMigrations = {
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
};

// Strings from the wire may hold invalid UTF-8; JSON text must not.
std::string Dump(const json& j, int indent = -1) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

json ParseStored(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? json(nullptr) : j;
}

// "v12" -> 12; 0 for anything else.
int64_t VersionFromDirName(const std::string& name) {
  if (name.size() < 2 || name[0] != 'v' || name.size() > 19) return 0;
  int64_t v = 0;
  for (size_t i = 1; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return 0;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

std::string VersionRel(const std::string& model, int64_t version) {
  return "checkpoints/" + model + "/v" + std::to_string(version);
}

}  // namespace

Result<Registry> Registry::Open(const std::string& root, const Clock& clock) {
  GANTRY_RETURN_IF_ERROR(MakeDirs(root + "/checkpoints"));
  GANTRY_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(root + "/checkpoints/.lock"));
  // durable: the COMMIT is what makes a version exist, so it must reach disk.
  GANTRY_ASSIGN_OR_RETURN(sql::Db db, sql::Db::Open(root + "/registry.db", /*durable=*/true));
  GANTRY_RETURN_IF_ERROR(db.Migrate(kMigrations).WithContext("registry.db"));
  Registry reg(root, clock, std::move(lock), std::move(db));
  GANTRY_RETURN_IF_ERROR(reg.RecoverInterruptedSaves());
  return reg;
}

Status Registry::RecoverInterruptedSaves() {
  // The throwing std::filesystem calls keep this short; nothing escapes.
  try {
    for (const auto& model_entry : fs::directory_iterator(CheckpointsDir())) {
      if (!model_entry.is_directory()) continue;
      const std::string model = model_entry.path().filename().string();
      std::vector<fs::path> entries;
      for (const auto& e : fs::directory_iterator(model_entry.path())) entries.push_back(e.path());
      for (const auto& path : entries) {
        const std::string name = path.filename().string();
        if (name.rfind(kStagingPrefix, 0) == 0) {
          spdlog::info("removing {} left by an interrupted save", path.string());
          fs::remove_all(path);
          continue;
        }
        int64_t version = VersionFromDirName(name);
        if (version == 0) continue;
        GANTRY_ASSIGN_OR_RETURN(bool known, HasVersion(model, version));
        if (known) continue;
        std::string aside = model_entry.path().string() + "/.orphan-" + name + "-" + NewRequestId();
        spdlog::warn("{} has no row in registry.db (a save died before committing); moving it to {}",
                     path.string(), aside);
        fs::rename(path, aside);
      }
    }
  } catch (const fs::filesystem_error& e) {
    return Status::Internal(std::string("recovering interrupted saves: ") + e.what());
  }
  return Status::Ok();
}

Result<int64_t> Registry::LatestVersion(const std::string& model) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT COALESCE(MAX(version), 0) FROM versions WHERE model = ?1"));
  q.Bind(1, model);
  GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? q.ColumnInt(0) : 0;
}

Result<bool> Registry::HasVersion(const std::string& model, int64_t version) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT 1 FROM versions WHERE model = ?1 AND version = ?2"));
  q.Bind(1, model).Bind(2, version);
  return q.Step();
}

Result<json> Registry::Save(const Checkpoint& c) {
  GANTRY_RETURN_IF_ERROR(ValidateName(c.model, "model"));
  const std::string model_dir = CheckpointsDir() + "/" + c.model;
  if (!PathExists(model_dir)) {
    GANTRY_RETURN_IF_ERROR(MakeDirs(model_dir));
    GANTRY_RETURN_IF_ERROR(FsyncPath(CheckpointsDir()));
  }
  // Step 1: the bulk of the work happens outside the write lock.
  GANTRY_ASSIGN_OR_RETURN(StagingDir staging, StagingDir::Create(model_dir));
  GANTRY_ASSIGN_OR_RETURN(auto entries, WriteTensorFile(staging.path() + "/tensors.bin", c.tensors));

  // Step 2.
  sql::Transaction tx(db_);
  GANTRY_RETURN_IF_ERROR(tx.begin_status().WithContext("saving checkpoint"));
  GANTRY_ASSIGN_OR_RETURN(int64_t latest, LatestVersion(c.model));
  const int64_t version = latest + 1;
  const double now = clock_->WallSeconds();
  const uint64_t bytes = c.DataBytes();

  // Step 3.
  json tensors = json::array();
  for (const auto& e : entries) tensors.push_back(e.ToJson());
  json manifest = {{"model", c.model},     {"version", version}, {"job_id", c.job_id},
                   {"attempt", c.attempt}, {"step", c.step},     {"epoch", c.epoch},
                   {"metrics", c.metrics}, {"meta", c.meta},     {"created_at", now},
                   {"bytes", bytes},       {"tensors", std::move(tensors)}};
  GANTRY_RETURN_IF_ERROR(WriteFileAtomic(staging.path() + "/manifest.json", Dump(manifest, 2) + "\n"));

  // Step 4.
  const std::string rel = VersionRel(c.model, version);
  GANTRY_RETURN_IF_ERROR(staging.RenameTo(root_ + "/" + rel));
  GANTRY_RETURN_IF_ERROR(FsyncPath(model_dir));

  // Step 5.
  GANTRY_ASSIGN_OR_RETURN(auto ins_model, db_.Prepare(
      "INSERT INTO models(name, created_at) VALUES(?1, ?2) ON CONFLICT(name) DO NOTHING"));
  GANTRY_RETURN_IF_ERROR(ins_model.Bind(1, c.model).Bind(2, now).Run());
  GANTRY_ASSIGN_OR_RETURN(auto ins_version, db_.Prepare(
      "INSERT INTO versions(model, version, job_id, attempt, step, epoch, metrics_json, meta_json,"
      " bytes, path, created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"));
  ins_version.Bind(1, c.model).Bind(2, version).Bind(3, c.job_id).Bind(4, c.attempt);
  ins_version.Bind(5, c.step).Bind(6, c.epoch).Bind(7, Dump(c.metrics)).Bind(8, Dump(c.meta));
  ins_version.Bind(9, static_cast<int64_t>(bytes)).Bind(10, rel).Bind(11, now);
  GANTRY_RETURN_IF_ERROR(ins_version.Run());
  GANTRY_RETURN_IF_ERROR(tx.Commit().WithContext("committing " + rel));
  staging.Keep();
  spdlog::info("saved {} v{} ({} tensors, {} bytes)", c.model, version, c.tensors.size(), bytes);
  return json{{"model", c.model}, {"version", version}, {"path", root_ + "/" + rel}, {"bytes", bytes}};
}

Result<json> Registry::ListVersions(const std::string& model) {
  GANTRY_RETURN_IF_ERROR(ValidateName(model, "model"));
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "SELECT version, job_id, attempt, step, epoch, metrics_json, bytes, path, created_at"
      " FROM versions WHERE model = ?1 ORDER BY version"));
  q.Bind(1, model);
  json versions = json::array();
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    versions.push_back({{"version", q.ColumnInt(0)},
                        {"job_id", q.ColumnText(1)},
                        {"attempt", q.ColumnInt(2)},
                        {"step", q.ColumnInt(3)},
                        {"epoch", q.ColumnInt(4)},
                        {"metrics", ParseStored(q.ColumnText(5))},
                        {"bytes", q.ColumnInt(6)},
                        {"path", root_ + "/" + q.ColumnText(7)},
                        {"created_at", q.ColumnDouble(8)}});
  }
  if (versions.empty()) {
    return Status::NotFound("model '" + model + "' has no checkpoints in " + root_ +
                            " (list_models shows the models this registry holds)");
  }
  return json{{"model", model}, {"versions", std::move(versions)}};
}

Result<json> Registry::ListModels() {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "SELECT m.name, COUNT(v.version), COALESCE(MAX(v.version), 0) FROM models m"
      " LEFT JOIN versions v ON v.model = m.name GROUP BY m.name ORDER BY m.name"));
  json models = json::array();
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    models.push_back({{"name", q.ColumnText(0)}, {"versions", q.ColumnInt(1)}, {"latest", q.ColumnInt(2)}});
  }
  return json{{"models", std::move(models)}};
}

Result<json> Registry::GetVersion(const std::string& model, int64_t version) {
  GANTRY_RETURN_IF_ERROR(ValidateName(model, "model"));
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT path FROM versions WHERE model = ?1 AND version = ?2"));
  q.Bind(1, model).Bind(2, version);
  GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) {
    GANTRY_ASSIGN_OR_RETURN(int64_t latest, LatestVersion(model));
    if (latest == 0) {
      return Status::NotFound("model '" + model + "' has no checkpoints in " + root_ +
                              " (list_models shows the models this registry holds)");
    }
    return Status::NotFound("model '" + model + "' has no version " + std::to_string(version) +
                            " (versions run from 1 to " + std::to_string(latest) + ")");
  }
  const std::string path = root_ + "/" + q.ColumnText(0);
  auto text = ReadFile(path + "/manifest.json");
  if (!text.ok()) {
    return Status::Corruption(model + " v" + std::to_string(version) + " is indexed but " + path +
                              "/manifest.json cannot be read (run `gantry ckpt fsck`)");
  }
  json manifest = ParseStored(*text);
  if (!manifest.is_object()) {
    return Status::Corruption(path + "/manifest.json is not valid JSON (run `gantry ckpt fsck`)");
  }
  manifest["path"] = path;
  return manifest;
}

}  // namespace gantry::storage
