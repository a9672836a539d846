// Registry: the checkpoint store of one data directory.
//
//   <root>/checkpoints/<model>/v<N>/manifest.json   what the version holds
//   <root>/checkpoints/<model>/v<N>/tensors.bin     tensor bytes, concatenated
//   <root>/registry.db                              SQLite index (WAL)
//
// Protocol of Save(), so that a crash at any point leaves either the old
// state or the new one:
//   1. write tensors.bin into <model>/.staging-<random>/ and fsync it;
//   2. BEGIN IMMEDIATE (the SQLite write lock serialises savers), allocate
//      N = max(version) + 1 for the model (versions start at 1, no gaps);
//   3. write manifest.json (fsync file and staging folder);
//   4. rename staging -> v<N>, fsync the model folder;
//   5. insert the models/versions rows and COMMIT: the commit is the moment
//      the version exists. Any failure before it removes the folder again.
// A crash before 4 leaves a .staging-* folder, a crash between 4 and 5 a
// v<N> folder with no row; Open() deletes the former and moves the latter
// aside to .orphan-v<N>-<random> (never deleting data the index lacks), so
// the next save can take N.
//
// Paths in the index are relative to the data dir (the folder can move);
// replies carry absolute paths.
//
// Ownership: owns the database handle; the Clock must outlive the Registry.
// Thread safety: one thread at a time (the service's serve thread).
#pragma once

#include <string>

#include "common/clock.h"
#include "common/protocol.h"
#include "common/sqlite.h"
#include "storage/checkpoint.h"
#include "storage/file_lock.h"

namespace gantry::storage {

class Registry {
 public:
  // Locks the data dir against a second storage service, opens (creating)
  // <root>/registry.db and recovers interrupted saves.
  static Result<Registry> Open(const std::string& root, const Clock& clock);

  Registry(Registry&&) = default;
  Registry& operator=(Registry&&) = default;

  // Commits a new version. Returns {model, version, path, bytes} where bytes
  // is the size of tensors.bin.
  Result<json> Save(const Checkpoint& checkpoint);
  // {model, versions: [{version, job_id, attempt, step, epoch, metrics,
  //  bytes, path, created_at}]} in version order; not_found for a model
  // with no versions.
  Result<json> ListVersions(const std::string& model);
  // {models: [{name, versions, latest}]} by name.
  Result<json> ListModels();
  // The version's manifest plus "path"; not_found if there is no such version.
  Result<json> GetVersion(const std::string& model, int64_t version);

  const std::string& root() const { return root_; }
  std::string CheckpointsDir() const { return root_ + "/checkpoints"; }

 private:
  Registry(std::string root, const Clock& clock, FileLock lock, sql::Db db)
      : root_(std::move(root)), clock_(&clock), lock_(std::move(lock)), db_(std::move(db)) {}

  // Startup recovery described above.
  Status RecoverInterruptedSaves();
  Result<int64_t> LatestVersion(const std::string& model);
  Result<bool> HasVersion(const std::string& model, int64_t version);

  std::string root_;
  const Clock* clock_;
  FileLock lock_;
  sql::Db db_;
};

}  // namespace gantry::storage
