// Collector: retention and garbage collection of the checkpoint store.
//
// Deletion is two-phase so that a crash at any point leaves no index row
// pointing at missing data and, after the next pass, no data that nothing
// references:
//   1. in one SQLite transaction, remove the version's rows (tensors, tags,
//      aliases, version), then every blob row no tensor references any
//      more and every pack row left without blobs, and log the version
//      folder and each such pack file in pending_deletes;
//   2. remove the logged paths, fsync their parent folders, then clear the
//      log entries (a second transaction).
// A crash after 1 leaves logged paths that the next pass (at the latest on
// restart) removes again; removing a path twice is harmless.
// Sweep() catches what a crashed save or compaction left (see registry.h):
// staging folders, pack files without a row, half-written compactions,
// v<N> folders with N >= next_version.
// A version folder with no row and N < next_version cannot come from a
// crash of this code; it is moved aside to .orphan-v<N>-<random> rather
// than deleted, and fsck reports it.
//
// Compaction (CompactPacks) gives back the space of dead blobs in packs
// that newer versions still partly use: the live blobs are copied into a
// new pack, which is fsynced and published; one transaction points the
// blob rows at it and logs the old pack for deletion. A crash before that
// commit leaves an unreferenced new pack (swept), after it a logged old
// pack (removed by the next pass).
//
// Retention keeps the union of the latest keep_latest versions, the best
// keep_best by a metric (min or max; versions without the metric never
// count as best), and every aliased or protected-tag version.
//
// Ownership: borrows the index and blob store. Thread safety: the
// registry's thread only; Sweep() REQUIRES no save in progress (true on
// that thread between requests).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "storage/blob_store.h"
#include "storage/index.h"

namespace gantry::storage {

// Name prefix of a pack being written by compaction, in the pack folder.
inline constexpr const char* kCompactPrefix = ".compact-";

// Versions a policy lets go, in ascending order.
std::vector<int64_t> SelectExpired(const std::vector<VersionRow>& versions, const RetentionPolicy& policy,
                                   const std::set<int64_t>& protected_versions);

struct SweepReport {
  std::vector<std::string> removed;      // relative paths
  std::vector<std::string> quarantined;  // moved aside, relative paths
};

class Collector {
 public:
  Collector(std::string root, Index& index, const BlobStore& blobs, const Clock& clock)
      : root_(std::move(root)), index_(index), blobs_(blobs), clock_(clock) {}

  // Phase 1 for one version. REQUIRES: a transaction open on index.db().
  Status UnlinkVersion(const VersionRow& version);
  // Phase 1 for blobs no version references. REQUIRES: a transaction.
  Status UnlinkUnreferencedBlobs(int64_t* count, uint64_t* bytes);
  // Phase 1 of the model's retention policy in its own transaction; the
  // versions it removed (or, dry_run, would remove).
  Result<std::vector<int64_t>> ApplyRetention(const std::string& model, bool dry_run);
  // Rewrites packs whose live blobs fill less than `below_live_fraction`
  // of them; returns how many. REQUIRES: no save in progress.
  Result<int64_t> CompactPacks(double below_live_fraction);
  // Phase 2: removes every logged path; returns how many were logged.
  Result<int64_t> FinishPendingDeletes(uint64_t* bytes_freed = nullptr);
  Result<SweepReport> Sweep(bool dry_run);
  // At open: finish interrupted deletes, then sweep.
  Status Recover();

 private:
  std::string root_;
  Index& index_;
  const BlobStore& blobs_;
  const Clock& clock_;
};

}  // namespace gantry::storage
