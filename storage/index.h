// Index: the SQLite side of the checkpoint store (<data>/registry.db, WAL,
// synchronous=FULL). It holds
//   models           name, next_version (numbers are never reused)
//   versions         one row per committed version: job, attempt, step,
//                    metrics, sizes, lineage, folder (relative to the data dir)
//   version_tensors  each version's tensors with content hash and blob key:
//                    the blob reference table (a blob lives while any row
//                    names it)
//   blobs            content-addressed tensor bytes: key -> (pack, offset)
//   packs            pack files under checkpoints/.packs/ (a pack lives
//                    while any blob is in it)
//   aliases, tags    names for versions; a tag may protect its version
//   retention        per-model policy (latest N, best K by a metric)
//   pending_deletes  paths that garbage collection has unlinked from the
//                    index but may not have removed from disk yet
//   save_requests    client request ids of saves -> the version each made
//                    (a retried save returns it instead of saving again)
// The schema evolves only by appending to the migration list in index.cc.
// Every statement is parameterised.
//
// Ownership: owns the database handle. Thread safety: one thread at a time;
// callers group writes with sql::Transaction(db()).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/protocol.h"
#include "common/sqlite.h"
#include "storage/blob_store.h"
#include "storage/manifest.h"

namespace gantry::storage {

struct VersionRow {
  int64_t version = 0;
  Provenance prov;             // prov.model is the row's model
  uint64_t bytes = 0;          // sum of tensor sizes
  uint64_t bytes_written = 0;  // new bytes this save put on disk
  std::string path;            // relative to the data dir
  int format = kManifestFormat;
};

// One model of the registry, for list_models.
struct ModelInfo {
  std::string name;
  int64_t versions = 0;       // committed versions
  int64_t latest = 0;         // newest version number, 0 when none
  uint64_t bytes_written = 0; // disk bytes its saves added
};

struct BlobRow {
  std::string key;
  std::string hash;
  uint64_t bytes = 0;
  std::string pack;
  uint64_t offset = 0;
  BlobLocation location() const { return {pack, offset, bytes}; }
};

struct PackRow {
  std::string name;
  uint64_t bytes = 0;       // file size
  uint64_t live_bytes = 0;  // sum of the blobs still in it
  int64_t blobs = 0;
};

// The version a save with a given request id committed.
struct SaveRequestRow {
  std::string model;
  int64_t version = 0;
};

struct TagRow {
  std::string tag;
  bool protect = false;
};

struct RetentionPolicy {
  int64_t keep_latest = 1;
  int64_t keep_best = 0;
  std::string metric;  // empty when keep_best is 0
  std::string mode = "min";
};

class Index {
 public:
  static Result<Index> Open(const std::string& path);

  Index(Index&&) = default;
  Index& operator=(Index&&) = default;

  sql::Db& db() { return db_; }

  // Models and version numbers.
  Status EnsureModel(const std::string& model, double now);
  Result<bool> ModelExists(const std::string& model);
  // The number the next save of `model` takes (1 for a new model).
  Result<int64_t> NextVersion(const std::string& model);
  Status SetNextVersion(const std::string& model, int64_t next);
  Result<std::vector<ModelInfo>> ListModels();

  // Versions.
  Status InsertVersion(const VersionRow& row);
  Status InsertTensors(const std::string& model, int64_t version, const std::vector<TensorRecord>& tensors);
  Result<std::optional<VersionRow>> GetVersion(const std::string& model, int64_t version);
  Result<std::vector<VersionRow>> Versions(const std::string& model);
  Result<std::vector<VersionRow>> AllVersions();
  Result<int64_t> LatestVersion(const std::string& model);  // 0 when none
  Result<std::vector<TensorRecord>> Tensors(const std::string& model, int64_t version);
  // Save request ids (unique: a second record of one id is already_exists).
  Status RecordSaveRequest(const std::string& request_id, const std::string& model, int64_t version, double now);
  Result<std::optional<SaveRequestRow>> SaveForRequest(const std::string& request_id);
  // Removes the version's rows (tensors, tags, aliases, version).
  Status DeleteVersionRows(const std::string& model, int64_t version);

  // Packs and blobs.
  Status InsertPack(const std::string& name, uint64_t bytes, double now);
  // Every pack with the bytes of its blobs; a pack with no blob is dead.
  Result<std::vector<PackRow>> AllPacks();
  Status DeletePack(const std::string& name);
  Status InsertBlob(const BlobRow& blob, double now);
  Status MoveBlob(const std::string& key, const std::string& pack, uint64_t offset);
  Result<std::optional<BlobRow>> GetBlob(const std::string& key);
  Result<std::vector<BlobRow>> BlobsWithHash(const std::string& hash);
  Result<std::vector<BlobRow>> BlobsInPack(const std::string& pack);
  Result<std::vector<BlobRow>> AllBlobs();
  Result<std::vector<BlobRow>> UnreferencedBlobs();
  Status DeleteBlob(const std::string& key);

  // Two-phase deletion's intent log.
  Status AddPendingDelete(const std::string& rel_path, double now);
  Result<std::vector<std::string>> PendingDeletes();
  Status ClearPendingDelete(const std::string& rel_path);

  // Aliases and tags (index_labels.cc).
  Status SetAlias(const std::string& model, const std::string& alias, int64_t version, double now);
  Result<std::optional<int64_t>> RemoveAlias(const std::string& model, const std::string& alias);
  Result<std::optional<int64_t>> AliasVersion(const std::string& model, const std::string& alias);
  Result<std::map<int64_t, std::vector<std::string>>> AliasesByVersion(const std::string& model);
  Status AddTag(const std::string& model, int64_t version, const std::string& tag, bool protect, double now);
  Result<bool> RemoveTag(const std::string& model, int64_t version, const std::string& tag);
  Result<std::map<int64_t, std::vector<TagRow>>> TagsByVersion(const std::string& model);
  // Aliased, or carrying a protecting tag.
  Result<bool> IsProtected(const std::string& model, int64_t version);

  // Retention (index_labels.cc).
  Status SetRetention(const std::string& model, const RetentionPolicy& policy, double now);
  Status ClearRetention(const std::string& model);
  Result<std::optional<RetentionPolicy>> GetRetention(const std::string& model);
  Result<std::vector<std::string>> ModelsWithRetention();

 private:
  explicit Index(sql::Db db) : db_(std::move(db)) {}
  Result<std::vector<VersionRow>> QueryVersions(const std::string& where, const std::string& model);
  sql::Db db_;
};

}  // namespace gantry::storage
