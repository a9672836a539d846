// Registry: the checkpoint store of one data directory.
//
//   <root>/checkpoints/<model>/v<N>/manifest.json  what the version holds
//   <root>/checkpoints/.packs/<name>.pack          tensor bytes, stored once
//                                                  by content (blob_store.h)
//   <root>/registry.db                             the index (index.h)
//
// Protocol of Save(), so that a crash at any point leaves either the old
// state or the new one:
//   1. in <model>/.staging-<random>/, hash every tensor; one whose bytes
//      already live in a blob (same hash, bytes compared) is shared, the
//      others are appended to one new pack file, with writeback started as
//      it grows so the disk works while later tensors are hashed;
//      fdatasync the pack. (A data-plane save whose tensors are views into
//      one inbox file may instead take that file as the pack: see
//      SourceFile);
//   2. BEGIN IMMEDIATE (the SQLite write lock); N = models.next_version;
//   3. write manifest.json (fsync file and staging folder);
//   4. rename the pack into .packs/ and fsync that folder;
//   5. rename staging -> v<N>, fsync the model folder;
//   6. insert pack, blob, version and tensor rows, set next_version = N + 1
//      and COMMIT: the commit is the moment the version exists.
//   Then retention runs for the model (collector.h).
// A failure before 6 removes what it created. A crash leaves at most a
// staging folder, a pack without a row, or a v<N> folder with
// N >= next_version; Open() removes them (Collector::Recover), and finishes
// any garbage collection a crash interrupted.
//
// Paths in the index are relative to the data dir (the folder can move);
// replies carry absolute paths. Model, alias and tag names follow
// ValidateName (common/ids.h); refs are "latest", "v<N>" or an alias.
//
// Ownership: owns the index, the data-dir lock and the blob store; the
// Clock must outlive the Registry.
// Thread safety: one thread at a time (the service's serve thread); saves
// from many clients are serialised by that thread, so version numbers are
// distinct and gap-free.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/protocol.h"
#include "storage/blob_store.h"
#include "storage/checkpoint.h"
#include "storage/file_lock.h"
#include "storage/index.h"
#include "storage/manifest.h"
#include "storage/registry_types.h"

namespace gantry::storage {

struct RegistryOptions {
  // `gc` rewrites a pack whose live blobs fill less than this share of it
  // (copying them into a new pack), so deleted versions give their space
  // back even while newer versions share some of their tensors. Higher
  // reclaims more space for more copying; 0 never compacts.
  double compact_below_live_fraction = 0.5;
};

// A version's tensors read back from disk and verified against their
// checksums. data[i] belongs to manifest.tensors[i].
struct LoadedVersion {
  Manifest manifest;
  std::string path;  // absolute version folder
  std::vector<std::vector<uint8_t>> data;
};

class Registry {
 public:
  // Locks the data dir against a second storage service, opens (creating)
  // <root>/registry.db and recovers what a crash interrupted.
  static Result<Registry> Open(const std::string& root, const Clock& clock, RegistryOptions options = {});

  Registry(Registry&&) = default;
  Registry& operator=(Registry&&) = default;

  // Commits a new version. A non-empty `request_id` (the client's
  // idempotency key, GetRequestId in common/rpc.h) is recorded in the same
  // transaction; a later Save with the same id, also after a restart,
  // commits nothing and returns that version (deduplicated = true), or
  // failed_precondition when it has been deleted since, invalid_argument
  // when it belongs to another model. Every save path (RPC, import, a
  // local data-plane save) passes its request id here.
  //
  // `source`, when given, says every tensor's bytes are a view into one file
  // on the data dir's file system (the data plane's inbox file,
  // storage/inbox.h, mapped as `bytes`). When at least half of that file is
  // new blobs, step 1 takes the file itself as the version's pack (renamed
  // into the staging folder and fdatasynced) instead of copying the bytes:
  // the bytes are then written to disk once, as by a plain write. Tensors
  // that are shared stay in it as dead bytes, which gc reclaims like those
  // of deleted versions. Otherwise, or when the rename fails (another file
  // system), the new blobs are copied as usual; either way `path` may be
  // gone after the call.
  struct SourceFile {
    std::string path;
    std::span<const uint8_t> bytes;
  };
  Result<SaveResult> Save(const Checkpoint& checkpoint, const std::string& request_id = "",
                          const SourceFile* source = nullptr);

  // Reads (registry_read.cc).
  // Every version with its aliases and tags, and the model's retention
  // policy; not_found for a model with no versions.
  Result<VersionList> ListVersions(const std::string& model);
  // Every model, by name.
  Result<std::vector<ModelInfo>> ListModels();
  // The version's manifest and folder; not_found if there is no such version.
  Result<VersionDetail> GetVersion(const std::string& model, int64_t version);
  // "latest", "v<N>" (or "<N>") or an alias -> a committed version number.
  Result<int64_t> Resolve(const std::string& model, const std::string& ref);
  // Manifest + path + aliases + tags + protection of MODEL@REF.
  Result<ShowResult> Show(const std::string& model, const std::string& ref);
  // Reads every tensor (or only model tensors, plus the training-state
  // tensors named in `also`) and verifies checksums.
  Result<LoadedVersion> Load(const std::string& model, int64_t version, bool model_tensors_only = false,
                             const std::vector<std::string>& also = {});
  // MODEL@REF and its ancestors, following parent links (at most 64, a
  // loop stops at the first repeat).
  Result<LineageInfo> Lineage(const std::string& model, const std::string& ref);
  // Which tensors differ between two versions, and by how much.
  Result<DiffResult> Diff(const std::string& model_a, const std::string& ref_a, const std::string& model_b,
                          const std::string& ref_b);

  // Names and deletion (registry_labels.cc).
  Result<AliasChange> SetAlias(const std::string& model, const std::string& alias, const std::string& ref);
  Result<AliasChange> RemoveAlias(const std::string& model, const std::string& alias);
  Result<TagChange> Tag(const std::string& model, const std::string& ref, const std::string& tag, bool protect);
  Result<TagChange> Untag(const std::string& model, const std::string& ref, const std::string& tag);
  // Two-phase delete of one version; an aliased or protected version needs
  // `force` (its aliases and tags go with it).
  Result<DeleteResult> Delete(const std::string& model, const std::string& ref, bool force);
  // Sets (or with nullopt clears) the model's retention policy, then
  // applies it. Creates the model's row if needed, so a job can set its
  // policy before its first save.
  Result<RetentionInfo> SetRetention(const std::string& model, const std::optional<RetentionPolicy>& policy);
  Result<RetentionInfo> GetRetention(const std::string& model);
  // Applies retention (one model, or all with a policy), finishes pending
  // deletes and sweeps debris. dry_run reports what would go.
  Result<GcReport> CollectGarbage(const std::string& model, bool dry_run);
  // Checks every version's files against their checksums and the index.
  Result<FsckReport> Fsck(bool repair);

  const std::string& root() const { return root_; }
  std::string CheckpointsDir() const { return root_ + "/checkpoints"; }

 private:
  Registry(std::string root, const Clock& clock, RegistryOptions options, FileLock lock, Index index)
      : root_(std::move(root)), clock_(&clock), options_(options), lock_(std::move(lock)),
        index_(std::move(index)), blobs_(root_) {}

  Result<VersionRow> RequireVersion(const std::string& model, int64_t version);
  // What an earlier save with `request_id` made, if one did (Save).
  Result<std::optional<SaveResult>> EarlierSave(const std::string& model, const std::string& request_id);
  Status NoVersionsError(const std::string& model);
  // Picks the blob for one large tensor: an existing blob with the same
  // bytes (shared = true), or a fresh key.
  Result<std::string> ChooseBlobKey(const std::string& hash, std::span<const uint8_t> data,
                                    const std::vector<std::pair<std::string, std::span<const uint8_t>>>& fresh,
                                    bool* shared);
  // Retention for one model, then its pending deletes; the versions removed.
  Result<std::vector<int64_t>> ApplyRetentionAfterSave(const std::string& model);

  std::string root_;
  const Clock* clock_;
  RegistryOptions options_;
  FileLock lock_;
  Index index_;
  BlobStore blobs_;
};

}  // namespace gantry::storage
