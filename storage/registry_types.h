// What the Registry's operations return (registry.h). Plain structs: the
// service handlers encode them for the wire (storage_json.h), in the shape
// docs/protocol.md ("Storage") documents. Paths here are absolute.
//
// Thread safety: plain data.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "storage/collector.h"
#include "storage/index.h"
#include "storage/manifest.h"
#include "storage/tensor_stats.h"

namespace gantry::storage {

// save_checkpoint / import_version.
struct SaveResult {
  std::string model;
  int64_t version = 0;
  std::string path;
  uint64_t bytes = 0;          // sum of tensor sizes
  uint64_t bytes_written = 0;  // new bytes on disk (fresh tensors + manifest)
  int64_t tensors_shared = 0;  // tensors whose bytes an earlier blob already held
  std::vector<int64_t> expired;  // versions retention removed after the save
  // The request id had saved this version before: nothing was written now
  // (bytes_written and tensors_shared are 0, expired empty).
  bool deduplicated = false;
};

// One committed version with its names, for list_versions.
struct VersionInfo {
  VersionRow row;  // row.path is absolute here
  std::vector<std::string> aliases;
  std::vector<TagRow> tags;
};

struct VersionList {
  std::string model;
  std::vector<VersionInfo> versions;  // ascending
  std::optional<RetentionPolicy> retention;
};

// get_version: the manifest as stored, and where.
struct VersionDetail {
  Manifest manifest;
  std::string path;
};

// show_version: the manifest plus names and sizes from the index.
struct ShowResult {
  VersionDetail detail;
  std::vector<std::string> aliases;
  std::vector<TagRow> tags;
  bool is_protected = false;  // aliased or carrying a protecting tag
  uint64_t bytes_written = 0;
};

// A parent in a lineage chain; `row` is empty when the parent was deleted.
struct Ancestor {
  std::string model;
  int64_t version = 0;
  std::optional<VersionRow> row;
};

struct LineageInfo {
  VersionRow version;
  std::vector<Ancestor> ancestors;  // parent first
};

enum class TensorChange { kUnchanged, kChanged, kAdded, kRemoved, kRetyped };
const char* TensorChangeName(TensorChange c);

// One tensor of a diff: `tensor` is b's (a's when removed).
struct TensorDiff {
  TensorRecord tensor;
  TensorChange change = TensorChange::kUnchanged;
  bool shared = false;               // kUnchanged: both versions use one blob
  std::optional<DiffStats> stats;    // kChanged
  std::optional<TensorRecord> was;   // kRetyped: a's tensor
};

struct VersionRef {
  std::string model;
  int64_t version = 0;
};

struct DiffResult {
  VersionRef a, b;
  int64_t changed = 0, unchanged = 0, added = 0, removed = 0;
  uint64_t bytes_changed = 0;
  uint64_t bytes_total = 0;  // b's size
  std::vector<TensorDiff> tensors;  // a's order, then b's additions
};

// set_alias / remove_alias (`previous` only for set_alias).
struct AliasChange {
  std::string model;
  std::string alias;
  int64_t version = 0;
  std::optional<int64_t> previous;  // the version the alias named before
};

// tag_version / untag_version (`protect` only for tag_version).
struct TagChange {
  std::string model;
  int64_t version = 0;
  std::string tag;
  bool protect = false;
};

struct DeleteResult {
  std::string model;
  int64_t version = 0;
  uint64_t bytes_freed = 0;
};

// get_retention / set_retention (`expired` only for set_retention).
struct RetentionInfo {
  std::string model;
  std::optional<RetentionPolicy> retention;  // nullopt: keep everything
  std::vector<int64_t> expired;
};

struct ModelExpired {
  std::string model;
  std::vector<int64_t> versions;
};

struct GcReport {
  bool dry_run = false;
  std::vector<ModelExpired> expired;  // only models that lost versions
  int64_t paths_deleted = 0;
  int64_t packs_compacted = 0;
  uint64_t bytes_freed = 0;
  SweepReport swept;
};

// One finding of fsck. `model` empty and `version` 0 when not about a version.
struct FsckProblem {
  std::string kind;  // docs/protocol.md lists the kinds
  std::string path;  // relative to the data dir
  std::string detail;
  std::string model;
  int64_t version = 0;
};

// One thing fsck --repair did; unused fields are empty / 0.
struct FsckRepair {
  std::string action;
  std::string model;
  int64_t version = 0;
  std::string path;
  int64_t paths = 0;
};

struct FsckReport {
  bool ok = true;
  uint64_t versions_checked = 0;
  uint64_t blobs_checked = 0;
  uint64_t packs_checked = 0;
  uint64_t bytes_checked = 0;
  std::vector<FsckProblem> problems;
  std::vector<FsckRepair> repaired;
  std::vector<FsckProblem> remaining;  // what a repair could not fix
};

}  // namespace gantry::storage
