#include "storage/registry.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

#include "common/fs.h"
#include "common/ids.h"
#include "storage/collector.h"
#include "storage/content_hash.h"
#include "storage/file_io.h"
#include "storage/staging_dir.h"

namespace gantry::storage {
namespace {

std::string VersionRel(const std::string& model, int64_t version) {
  return "checkpoints/" + model + "/v" + std::to_string(version);
}

// Removes a published pack unless disarmed: between step 4 and the COMMIT
// it has no index row, and a failed save must not leave it behind.
class PublishedPack {
 public:
  explicit PublishedPack(const BlobStore& store) : store_(store) {}
  PublishedPack(const PublishedPack&) = delete;
  PublishedPack& operator=(const PublishedPack&) = delete;
  ~PublishedPack() {
    if (!name_.empty()) ::unlink(store_.Path(name_).c_str());
  }
  void Set(const std::string& name) { name_ = name; }
  void Disarm() { name_.clear(); }

 private:
  const BlobStore& store_;
  std::string name_;
};

// Hashes a save's tensors on a helper thread, ahead of the writer. Hashing
// runs at several GB/s and writing into the page cache at about half that,
// so the hash the writer needs next is normally ready and hashing costs the
// save no time. The tensors must outlive the HashAhead; destruction stops
// and joins the thread (also on an early error return).
class HashAhead {
 public:
  explicit HashAhead(const std::vector<TensorData>& tensors)
      : hashes_(tensors.size()), thread_([this, &tensors] {
          for (size_t i = 0; i < tensors.size() && !stop_.load(); ++i) {
            std::string h = HashBytes(tensors[i].data.data(), tensors[i].data.size()).Hex();
            std::lock_guard<std::mutex> lock(mu_);
            hashes_[i] = std::move(h);
            ++done_;
            cv_.notify_one();
          }
        }) {}
  HashAhead(const HashAhead&) = delete;
  HashAhead& operator=(const HashAhead&) = delete;
  ~HashAhead() {
    stop_.store(true);
    thread_.join();
  }
  // Blocks until tensor i is hashed.
  std::string Get(size_t i) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_ > i; });
    return hashes_[i];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t done_ = 0;                  // GUARDED_BY(mu_)
  std::vector<std::string> hashes_;  // [0, done_) GUARDED_BY(mu_)
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: starts once the members above exist
};

// How much a save writes to its pack between two writeback kicks. Smaller
// starts the disk sooner; each kick is a system call.
constexpr uint64_t kWritebackEvery = 4 << 20;

}  // namespace

Result<Registry> Registry::Open(const std::string& root, const Clock& clock, RegistryOptions options) {
  GANTRY_RETURN_IF_ERROR(MakeDirs(root + "/checkpoints"));
  GANTRY_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(root + "/checkpoints/.lock"));
  GANTRY_ASSIGN_OR_RETURN(Index index, Index::Open(root + "/registry.db"));
  Registry reg(root, clock, options, std::move(lock), std::move(index));
  GANTRY_RETURN_IF_ERROR(reg.blobs_.Init());
  GANTRY_RETURN_IF_ERROR(Collector(root, reg.index_, reg.blobs_, clock).Recover());
  return reg;
}

Result<std::string> Registry::ChooseBlobKey(
    const std::string& hash, std::span<const uint8_t> data,
    const std::vector<std::pair<std::string, std::span<const uint8_t>>>& fresh, bool* shared) {
  *shared = false;
  std::set<std::string> taken;
  // The same bytes twice in one save (tied weights) share one new blob.
  for (const auto& [key, bytes] : fresh) {
    if (key.compare(0, 32, hash) != 0) continue;
    taken.insert(key);
    if (bytes.size() == data.size() && std::memcmp(bytes.data(), data.data(), data.size()) == 0) {
      *shared = true;
      return key;
    }
  }
  GANTRY_ASSIGN_OR_RETURN(auto candidates, index_.BlobsWithHash(hash));
  for (const auto& c : candidates) {
    taken.insert(c.key);
    if (c.bytes != data.size()) continue;
    GANTRY_ASSIGN_OR_RETURN(bool same, blobs_.SameBytes(c.location(), data));
    if (same) {
      *shared = true;
      return c.key;
    }
  }
  if (!taken.count(hash)) return hash;
  for (int n = 1;; ++n) {
    std::string key = hash + "-" + std::to_string(n);
    if (!taken.count(key)) {
      spdlog::warn("content hash {} collides with different bytes; storing them as blob {}", hash, key);
      return key;
    }
  }
}

Result<std::optional<SaveResult>> Registry::EarlierSave(const std::string& model, const std::string& request_id) {
  GANTRY_ASSIGN_OR_RETURN(auto earlier, index_.SaveForRequest(request_id));
  if (!earlier) return std::optional<SaveResult>();
  const std::string was = earlier->model + " v" + std::to_string(earlier->version);
  if (earlier->model != model) {
    return Status::InvalidArgument("request_id " + request_id + " already saved " + was + "; a request id names one save (make a fresh one per save)");
  }
  GANTRY_ASSIGN_OR_RETURN(auto row, index_.GetVersion(model, earlier->version));
  if (!row) {
    return Status::FailedPrecondition("request_id " + request_id + " already saved " + was +
                                      ", which has been deleted since; a new save needs a new request id");
  }
  SaveResult r;
  r.model = model;
  r.version = row->version;
  r.path = root_ + "/" + row->path;
  r.bytes = row->bytes;
  r.deduplicated = true;
  return std::optional<SaveResult>(std::move(r));
}

Result<SaveResult> Registry::Save(const Checkpoint& c, const std::string& request_id,
                                   const SourceFile* source) {
  const std::string& model = c.prov.model;
  GANTRY_RETURN_IF_ERROR(ValidateName(model, "model"));
  if (!request_id.empty()) {
    // A retry of a save whose reply was lost (the service or the link died
    // after the commit): answer as the first time, write nothing.
    GANTRY_ASSIGN_OR_RETURN(auto earlier, EarlierSave(model, request_id));
    if (earlier) {
      spdlog::info("save request {} repeated: {} v{} already holds it", request_id, model, earlier->version);
      return std::move(*earlier);
    }
  }
  const std::string model_dir = CheckpointsDir() + "/" + model;
  if (!PathExists(model_dir)) {
    GANTRY_RETURN_IF_ERROR(MakeDirs(model_dir));
    GANTRY_RETURN_IF_ERROR(FsyncPath(CheckpointsDir()));
  }
  const double now = clock_->WallSeconds();

  // Step 1: the bulk of the work, before the write lock.
  GANTRY_ASSIGN_OR_RETURN(StagingDir staging, StagingDir::Create(model_dir));
  const std::string staged_pack = staging.path() + "/new.pack";
  Manifest manifest;
  std::optional<File> pack;
  std::vector<BlobRow> fresh;
  std::vector<std::pair<std::string, std::span<const uint8_t>>> fresh_keys;
  uint64_t pack_bytes = 0;
  uint64_t unkicked = 0;
  int64_t shared_count = 0;
  // A data-plane save: its bytes are already in a file on this disk, which
  // starts towards the disk now, while the tensors are hashed, and is
  // taken as the pack below unless most of it turns out to be shared.
  std::optional<File> source_file;
  if (source) {
    auto opened = File::OpenRead(source->path);
    if (opened.ok()) {
      source_file = std::move(opened).value();
      source_file->StartWriteback();
    }
  }
  std::vector<std::span<const uint8_t>> deferred;  // new blobs' bytes, when source_file
  uint64_t deferred_bytes = 0;
  HashAhead hashes(c.tensors);
  for (size_t i = 0; i < c.tensors.size(); ++i) {
    const TensorData& t = c.tensors[i];
    TensorRecord r;
    r.name = t.name;
    r.dtype = t.dtype;
    r.shape = t.shape;
    r.bytes = t.data.size();
    r.hash = hashes.Get(i);
    bool shared = false;
    GANTRY_ASSIGN_OR_RETURN(r.blob, ChooseBlobKey(r.hash, t.data, fresh_keys, &shared));
    if (shared) {
      ++shared_count;
    } else if (source_file) {
      fresh.push_back({r.blob, r.hash, t.data.size(), "", 0});
      fresh_keys.emplace_back(r.blob, t.data);
      deferred.push_back(t.data);
      deferred_bytes += t.data.size();
    } else {
      if (!pack) {
        GANTRY_ASSIGN_OR_RETURN(File f, File::CreateNew(staged_pack));
        pack = std::move(f);
      }
      GANTRY_RETURN_IF_ERROR(pack->Write(t.data));
      fresh.push_back({r.blob, r.hash, t.data.size(), "", pack_bytes});
      fresh_keys.emplace_back(r.blob, t.data);
      pack_bytes += t.data.size();
      unkicked += t.data.size();
      if (unkicked >= kWritebackEvery) {
        pack->StartWriteback();
        unkicked = 0;
      }
    }
    manifest.bytes += r.bytes;
    manifest.tensors.push_back(std::move(r));
  }
  if (!deferred.empty()) {
    // Take the source file as the pack when at least half of it is new
    // (gc's default compaction threshold: such a pack is not rewritten).
    if (deferred_bytes * 2 >= source->bytes.size() && ::rename(source->path.c_str(), staged_pack.c_str()) == 0) {
      pack = std::move(source_file);
      for (size_t i = 0; i < deferred.size(); ++i) {
        fresh[i].offset = static_cast<uint64_t>(deferred[i].data() - source->bytes.data());
      }
      pack_bytes = source->bytes.size();
    } else {
      GANTRY_ASSIGN_OR_RETURN(File f, File::CreateNew(staged_pack));
      pack = std::move(f);
      for (size_t i = 0; i < deferred.size(); ++i) {
        GANTRY_RETURN_IF_ERROR(pack->Write(deferred[i]));
        fresh[i].offset = pack_bytes;
        pack_bytes += deferred[i].size();
      }
    }
  }
  if (pack) {
    GANTRY_RETURN_IF_ERROR(pack->Sync());
    GANTRY_RETURN_IF_ERROR(pack->Close());
  }
  uint64_t bytes_written = pack_bytes;

  // Step 2.
  sql::Transaction tx(index_.db());
  GANTRY_RETURN_IF_ERROR(tx.begin_status().WithContext("saving checkpoint"));
  GANTRY_RETURN_IF_ERROR(index_.EnsureModel(model, now));
  GANTRY_ASSIGN_OR_RETURN(const int64_t version, index_.NextVersion(model));

  // Step 3.
  manifest.version = version;
  manifest.prov = c.prov;
  manifest.prov.created_at = now;
  manifest.optimizer_state = c.optimizer_state;
  manifest.trainer_state = c.trainer_state;
  const std::string manifest_text = DumpJson(manifest.ToJson(), 2) + "\n";
  GANTRY_RETURN_IF_ERROR(WriteFileAtomic(staging.path() + "/manifest.json", manifest_text));
  bytes_written += manifest_text.size();

  // Step 4.
  PublishedPack published(blobs_);
  const std::string pack_name = pack ? BlobStore::NewPackName() : "";
  if (pack) {
    GANTRY_RETURN_IF_ERROR(blobs_.Publish(staged_pack, pack_name));
    published.Set(pack_name);
    GANTRY_RETURN_IF_ERROR(blobs_.SyncDir());
  }

  // Step 5.
  const std::string rel = VersionRel(model, version);
  GANTRY_RETURN_IF_ERROR(staging.RenameTo(root_ + "/" + rel));
  GANTRY_RETURN_IF_ERROR(FsyncPath(model_dir));

  // Step 6.
  if (pack) GANTRY_RETURN_IF_ERROR(index_.InsertPack(pack_name, pack_bytes, now));
  for (auto& b : fresh) {
    b.pack = pack_name;
    GANTRY_RETURN_IF_ERROR(index_.InsertBlob(b, now));
  }
  VersionRow row;
  row.version = version;
  row.prov = manifest.prov;
  row.bytes = manifest.bytes;
  row.bytes_written = bytes_written;
  row.path = rel;
  GANTRY_RETURN_IF_ERROR(index_.InsertVersion(row));
  GANTRY_RETURN_IF_ERROR(index_.InsertTensors(model, version, manifest.tensors));
  GANTRY_RETURN_IF_ERROR(index_.SetNextVersion(model, version + 1));
  if (!request_id.empty()) GANTRY_RETURN_IF_ERROR(index_.RecordSaveRequest(request_id, model, version, now));
  GANTRY_RETURN_IF_ERROR(tx.Commit().WithContext("committing " + rel));
  staging.Keep();
  published.Disarm();
  spdlog::info("saved {} v{} ({} tensors, {} bytes, {} written, {} shared)", model, version,
               c.tensors.size(), manifest.bytes, bytes_written, shared_count);

  SaveResult result;
  result.model = model;
  result.version = version;
  result.path = root_ + "/" + rel;
  result.bytes = manifest.bytes;
  result.bytes_written = bytes_written;
  result.tensors_shared = shared_count;
  // The version is committed whatever happens now: a retention failure is
  // logged and retried by the next save or gc, never reported as a failed save.
  auto expired = ApplyRetentionAfterSave(model);
  if (expired.ok()) {
    result.expired = std::move(*expired);
  } else {
    spdlog::warn("retention after saving {} v{}: {}", model, version, expired.status().ToString());
  }
  return result;
}

Result<std::vector<int64_t>> Registry::ApplyRetentionAfterSave(const std::string& model) {
  Collector gc(root_, index_, blobs_, *clock_);
  GANTRY_ASSIGN_OR_RETURN(auto expired, gc.ApplyRetention(model, false));
  GANTRY_RETURN_IF_ERROR(gc.FinishPendingDeletes().status());
  return expired;
}

Status Registry::NoVersionsError(const std::string& model) {
  return Status::NotFound("model '" + model + "' has no checkpoints in " + root_ +
                          " (`gantry ckpt models` lists the models this registry holds)");
}

Result<VersionRow> Registry::RequireVersion(const std::string& model, int64_t version) {
  GANTRY_ASSIGN_OR_RETURN(auto row, index_.GetVersion(model, version));
  if (row) return std::move(*row);
  GANTRY_ASSIGN_OR_RETURN(int64_t latest, index_.LatestVersion(model));
  if (latest == 0) return NoVersionsError(model);
  return Status::NotFound("model '" + model + "' has no version " + std::to_string(version) +
                          " (versions run up to " + std::to_string(latest) +
                          "; `gantry ckpt list " + model + "` shows them)");
}

}  // namespace gantry::storage
