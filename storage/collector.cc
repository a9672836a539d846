#include "storage/collector.h"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <unordered_set>

#include "common/fs.h"
#include "common/ids.h"
#include "storage/content_hash.h"
#include "storage/file_io.h"
#include "storage/staging_dir.h"

namespace gantry::storage {
namespace {

namespace fs = std::filesystem;

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

// Paths in pending_deletes come from this code, but the database is a file
// on disk: never follow one outside checkpoints/.
bool SafeRelPath(const std::string& rel) {
  if (rel.rfind("checkpoints/", 0) != 0) return false;
  fs::path p(rel);
  for (const auto& part : p) {
    if (part == ".." || part == ".") return false;
  }
  return true;
}

uint64_t TreeBytes(const fs::path& p) {
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return fs::file_size(p, ec);
  uint64_t n = 0;
  for (fs::recursive_directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec)) n += it->file_size(ec);
  }
  return n;
}

}  // namespace

std::vector<int64_t> SelectExpired(const std::vector<VersionRow>& versions, const RetentionPolicy& policy,
                                   const std::set<int64_t>& protected_versions) {
  std::set<int64_t> keep = protected_versions;
  std::vector<const VersionRow*> by_version;
  for (const auto& v : versions) by_version.push_back(&v);
  std::sort(by_version.begin(), by_version.end(),
            [](const VersionRow* a, const VersionRow* b) { return a->version > b->version; });
  for (size_t i = 0; i < by_version.size() && static_cast<int64_t>(i) < policy.keep_latest; ++i) {
    keep.insert(by_version[i]->version);
  }
  if (policy.keep_best > 0 && !policy.metric.empty()) {
    std::vector<std::pair<double, int64_t>> scored;
    for (const auto* v : by_version) {
      auto it = v->prov.metrics.find(policy.metric);
      if (it == v->prov.metrics.end() || !it->is_number()) continue;
      double x = it->get<double>();
      if (x != x) continue;  // NaN is never best
      scored.emplace_back(policy.mode == "max" ? -x : x, v->version);
    }
    // Ties go to the newer version.
    std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second > b.second;
    });
    for (size_t i = 0; i < scored.size() && static_cast<int64_t>(i) < policy.keep_best; ++i) {
      keep.insert(scored[i].second);
    }
  }
  std::vector<int64_t> expired;
  for (const auto& v : versions) {
    if (!keep.count(v.version)) expired.push_back(v.version);
  }
  std::sort(expired.begin(), expired.end());
  return expired;
}

Status Collector::UnlinkVersion(const VersionRow& v) {
  GANTRY_RETURN_IF_ERROR(index_.DeleteVersionRows(v.prov.model, v.version));
  return index_.AddPendingDelete(v.path, clock_.WallSeconds());
}

Status Collector::UnlinkUnreferencedBlobs(int64_t* count, uint64_t* bytes) {
  GANTRY_ASSIGN_OR_RETURN(auto dead, index_.UnreferencedBlobs());
  for (const auto& b : dead) {
    GANTRY_RETURN_IF_ERROR(index_.DeleteBlob(b.key));
    if (count) ++*count;
    if (bytes) *bytes += b.bytes;
  }
  // A pack goes with its last blob.
  GANTRY_ASSIGN_OR_RETURN(auto packs, index_.AllPacks());
  for (const auto& p : packs) {
    if (p.blobs > 0) continue;
    GANTRY_RETURN_IF_ERROR(index_.DeletePack(p.name));
    GANTRY_RETURN_IF_ERROR(index_.AddPendingDelete(BlobStore::RelPath(p.name), clock_.WallSeconds()));
  }
  return Status::Ok();
}

Result<std::vector<int64_t>> Collector::ApplyRetention(const std::string& model, bool dry_run) {
  GANTRY_ASSIGN_OR_RETURN(auto policy, index_.GetRetention(model));
  if (!policy) return std::vector<int64_t>();
  sql::Transaction tx(index_.db());
  GANTRY_RETURN_IF_ERROR(tx.begin_status().WithContext("applying retention to " + model));
  GANTRY_ASSIGN_OR_RETURN(auto versions, index_.Versions(model));
  std::set<int64_t> protected_versions;
  for (const auto& v : versions) {
    GANTRY_ASSIGN_OR_RETURN(bool p, index_.IsProtected(model, v.version));
    if (p) protected_versions.insert(v.version);
  }
  std::vector<int64_t> expired = SelectExpired(versions, *policy, protected_versions);
  if (dry_run || expired.empty()) return expired;
  for (const auto& v : versions) {
    if (std::binary_search(expired.begin(), expired.end(), v.version)) {
      GANTRY_RETURN_IF_ERROR(UnlinkVersion(v));
    }
  }
  GANTRY_RETURN_IF_ERROR(UnlinkUnreferencedBlobs(nullptr, nullptr));
  GANTRY_RETURN_IF_ERROR(tx.Commit().WithContext("applying retention to " + model));
  spdlog::info("retention removed {} version(s) of {}", expired.size(), model);
  return expired;
}

Result<int64_t> Collector::FinishPendingDeletes(uint64_t* bytes_freed) {
  GANTRY_ASSIGN_OR_RETURN(auto pending, index_.PendingDeletes());
  if (pending.empty()) return int64_t{0};
  std::set<std::string> parents;
  for (const auto& rel : pending) {
    if (!SafeRelPath(rel)) {
      spdlog::warn("pending delete '{}' is outside checkpoints/; dropping the entry, not the path", rel);
      continue;
    }
    fs::path p = fs::path(root_) / rel;
    if (bytes_freed) *bytes_freed += TreeBytes(p);
    std::error_code ec;
    fs::remove_all(p, ec);
    if (ec) return Status::Internal("removing " + p.string() + ": " + ec.message());
    parents.insert(p.parent_path().string());
  }
  // The removals must be durable before the log forgets them.
  for (const auto& dir : parents) {
    if (PathExists(dir)) GANTRY_RETURN_IF_ERROR(FsyncPath(dir));
  }
  sql::Transaction tx(index_.db());
  GANTRY_RETURN_IF_ERROR(tx.begin_status());
  for (const auto& rel : pending) GANTRY_RETURN_IF_ERROR(index_.ClearPendingDelete(rel));
  GANTRY_RETURN_IF_ERROR(tx.Commit());
  return static_cast<int64_t>(pending.size());
}

Result<SweepReport> Collector::Sweep(bool dry_run) {
  SweepReport report;
  const fs::path checkpoints = fs::path(root_) / "checkpoints";
  std::set<std::string> dirty_dirs;
  auto remove = [&](const fs::path& p) -> Status {
    report.removed.push_back(fs::relative(p, root_).string());
    if (dry_run) return Status::Ok();
    std::error_code ec;
    fs::remove_all(p, ec);
    if (ec) return Status::Internal("removing " + p.string() + ": " + ec.message());
    dirty_dirs.insert(p.parent_path().string());
    return Status::Ok();
  };
  try {
    for (const auto& model_entry : fs::directory_iterator(checkpoints)) {
      const std::string model = model_entry.path().filename().string();
      if (!model_entry.is_directory() || model.empty() || model[0] == '.') continue;
      GANTRY_ASSIGN_OR_RETURN(int64_t next, index_.NextVersion(model));
      GANTRY_ASSIGN_OR_RETURN(bool known_model, index_.ModelExists(model));
      std::vector<fs::path> entries;
      for (const auto& e : fs::directory_iterator(model_entry.path())) entries.push_back(e.path());
      for (const auto& path : entries) {
        const std::string name = path.filename().string();
        if (name.rfind(kStagingPrefix, 0) == 0) {
          GANTRY_RETURN_IF_ERROR(remove(path));
          continue;
        }
        int64_t version = VersionFromDirName(name);
        if (version == 0) continue;
        GANTRY_ASSIGN_OR_RETURN(auto row, index_.GetVersion(model, version));
        if (row) continue;
        if (version >= next) {
          // Renamed into place by a save that died before its COMMIT.
          GANTRY_RETURN_IF_ERROR(remove(path));
          continue;
        }
        fs::path aside = model_entry.path() / (".orphan-" + name + "-" + NewRequestId());
        report.quarantined.push_back(fs::relative(aside, root_).string());
        if (dry_run) continue;
        spdlog::warn("{} has no row in registry.db and its number was already committed; moving it to {}",
                     path.string(), aside.string());
        fs::rename(path, aside);
        dirty_dirs.insert(model_entry.path().string());
      }
      if (!known_model && !dry_run && fs::is_empty(model_entry.path())) {
        GANTRY_RETURN_IF_ERROR(remove(model_entry.path()));
      }
    }
    std::vector<std::string> strangers;
    GANTRY_ASSIGN_OR_RETURN(auto files, blobs_.ListPacks(&strangers));
    GANTRY_ASSIGN_OR_RETURN(auto rows, index_.AllPacks());
    std::unordered_set<std::string> indexed;
    for (const auto& p : rows) indexed.insert(p.name);
    for (const auto& name : files) {
      if (!indexed.count(name)) GANTRY_RETURN_IF_ERROR(remove(blobs_.Path(name)));
    }
    // A compaction that died before its commit.
    for (const auto& name : strangers) {
      if (name.rfind(kCompactPrefix, 0) == 0) GANTRY_RETURN_IF_ERROR(remove(blobs_.Path(name)));
    }
  } catch (const fs::filesystem_error& e) {
    return Status::Internal(std::string("sweeping ") + checkpoints.string() + ": " + e.what());
  }
  for (const auto& dir : dirty_dirs) {
    if (PathExists(dir)) GANTRY_RETURN_IF_ERROR(FsyncPath(dir));
  }
  if (!dry_run) {
    for (const auto& p : report.removed) spdlog::info("removed {} (not referenced by the index)", p);
  }
  return report;
}

Result<int64_t> Collector::CompactPacks(double below_live_fraction) {
  if (below_live_fraction <= 0) return int64_t{0};
  GANTRY_ASSIGN_OR_RETURN(auto packs, index_.AllPacks());
  int64_t compacted = 0;
  for (const auto& p : packs) {
    if (p.blobs == 0 || static_cast<double>(p.live_bytes) >= below_live_fraction * static_cast<double>(p.bytes)) {
      continue;
    }
    GANTRY_ASSIGN_OR_RETURN(auto live, index_.BlobsInPack(p.name));
    const std::string tmp = blobs_.Path(kCompactPrefix + NewRequestId());
    GANTRY_ASSIGN_OR_RETURN(File out, File::CreateNew(tmp));
    std::vector<uint64_t> offsets;
    uint64_t size = 0;
    bool damaged = false;
    for (const auto& b : live) {
      GANTRY_ASSIGN_OR_RETURN(auto data, blobs_.Read(b.location()));
      // Never carry damage forward into a pack that fsck would trust.
      if (HashBytes(data.data(), data.size()).Hex() != b.hash) {
        damaged = true;
        break;
      }
      GANTRY_RETURN_IF_ERROR(out.Write(data));
      offsets.push_back(size);
      size += data.size();
    }
    if (damaged) {
      (void)out.Close();
      ::unlink(tmp.c_str());
      spdlog::warn("not compacting pack {}: a blob in it fails its checksum (run `gantry ckpt fsck`)", p.name);
      continue;
    }
    GANTRY_RETURN_IF_ERROR(out.Sync());
    GANTRY_RETURN_IF_ERROR(out.Close());
    const std::string name = BlobStore::NewPackName();
    GANTRY_RETURN_IF_ERROR(blobs_.Publish(tmp, name));
    GANTRY_RETURN_IF_ERROR(blobs_.SyncDir());
    sql::Transaction tx(index_.db());
    Status s = tx.begin_status();
    if (s.ok()) s = index_.InsertPack(name, size, clock_.WallSeconds());
    for (size_t i = 0; s.ok() && i < live.size(); ++i) s = index_.MoveBlob(live[i].key, name, offsets[i]);
    if (s.ok()) s = index_.DeletePack(p.name);
    if (s.ok()) s = index_.AddPendingDelete(BlobStore::RelPath(p.name), clock_.WallSeconds());
    if (s.ok()) s = tx.Commit();
    if (!s.ok()) {
      ::unlink(blobs_.Path(name).c_str());  // no row names it
      return s.WithContext("compacting pack " + p.name);
    }
    spdlog::info("compacted pack {} ({} of {} bytes live) into {}", p.name, p.live_bytes, p.bytes, name);
    ++compacted;
  }
  return compacted;
}

Status Collector::Recover() {
  GANTRY_RETURN_IF_ERROR(FinishPendingDeletes().status().WithContext("finishing interrupted deletes"));
  return Sweep(false).status().WithContext("recovering interrupted saves");
}

}  // namespace gantry::storage
