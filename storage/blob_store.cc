#include "storage/blob_store.h"

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/fs.h"
#include "common/ids.h"
#include "storage/file_io.h"

namespace gantry::storage {
namespace {

// Comparison and hashing read in chunks: a blob may be larger than we want
// to hold twice in memory.
constexpr size_t kChunk = 4 << 20;

bool Hex(const std::string& s, size_t from, size_t n) {
  if (s.size() < from + n) return false;
  for (size_t i = from; i < from + n; ++i) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Status Unreadable(const BlobLocation& where, const Status& why) {
  return Status::Corruption("pack " + where.pack + " cannot be read at " + std::to_string(where.offset) + "+" +
                            std::to_string(where.bytes) + ": " + why.message() + " (run `gantry ckpt fsck`)");
}

// Calls `fn(chunk)` over the blob's bytes in order.
template <typename Fn>
Status ForEachChunk(const std::string& path, const BlobLocation& where, Fn&& fn) {
  auto file = File::OpenRead(path);
  if (!file.ok()) return Unreadable(where, file.status());
  std::vector<uint8_t> buf(static_cast<size_t>(std::min<uint64_t>(kChunk, std::max<uint64_t>(where.bytes, 1))));
  for (uint64_t done = 0; done < where.bytes;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), where.bytes - done));
    Status s = file->ReadAt(where.offset + done, std::span<uint8_t>(buf.data(), n));
    if (!s.ok()) return Unreadable(where, s);
    if (!fn(std::span<const uint8_t>(buf.data(), n), done)) return Status::Aborted("stopped");
    done += n;
  }
  return Status::Ok();
}

}  // namespace

Status BlobStore::Init() const {
  if (PathExists(dir_)) return Status::Ok();
  GANTRY_RETURN_IF_ERROR(MakeDirs(dir_));
  return FsyncPath(root_ + "/checkpoints");
}

std::string BlobStore::NewPackName() { return NewRequestId() + ".pack"; }

bool BlobStore::ValidPackName(const std::string& name) {
  return name.size() == 16 + 5 && Hex(name, 0, 16) && name.compare(16, 5, ".pack") == 0;
}

bool BlobStore::ValidKey(const std::string& key) {
  if (!Hex(key, 0, 32) || key.size() > 32 + 1 + 18) return false;
  if (key.size() == 32) return true;
  if (key[32] != '-' || key.size() == 33) return false;
  for (size_t i = 33; i < key.size(); ++i) {
    if (key[i] < '0' || key[i] > '9') return false;
  }
  return true;
}

Result<bool> BlobStore::SameBytes(const BlobLocation& where, std::span<const uint8_t> data) const {
  if (where.bytes != data.size() || !ValidPackName(where.pack)) return false;
  bool same = true;
  Status s = ForEachChunk(Path(where.pack), where, [&](std::span<const uint8_t> chunk, uint64_t at) {
    same = std::memcmp(chunk.data(), data.data() + at, chunk.size()) == 0;
    return same;
  });
  // A blob that cannot be read is not a blob to share.
  if (!s.ok() && s.code() != StatusCode::kAborted) return false;
  return same;
}

Result<std::vector<uint8_t>> BlobStore::Read(const BlobLocation& where) const {
  if (!ValidPackName(where.pack)) {
    return Status::Corruption("'" + where.pack + "' is not a pack name (run `gantry ckpt fsck`)");
  }
  auto file = File::OpenRead(Path(where.pack));
  if (!file.ok()) return Unreadable(where, file.status());
  std::vector<uint8_t> out(where.bytes);
  Status s = file->ReadAt(where.offset, out);
  if (!s.ok()) return Unreadable(where, s);
  return out;
}

Result<ContentHash> BlobStore::Hash(const BlobLocation& where) const {
  if (!ValidPackName(where.pack)) return Status::Corruption("'" + where.pack + "' is not a pack name");
  ContentHasher hasher;
  GANTRY_RETURN_IF_ERROR(ForEachChunk(Path(where.pack), where, [&](std::span<const uint8_t> chunk, uint64_t) {
    hasher.Update(chunk.data(), chunk.size());
    return true;
  }));
  return hasher.Finish();
}

Result<uint64_t> BlobStore::PackSize(const std::string& pack) const {
  GANTRY_ASSIGN_OR_RETURN(File f, File::OpenRead(Path(pack)));
  return f.Size();
}

Status BlobStore::Publish(const std::string& staged_path, const std::string& name) const {
  // Names are random and checked unused in the index, so a file already
  // there is debris of a crashed save: replacing it is what a sweep would do.
  if (std::rename(staged_path.c_str(), Path(name).c_str()) != 0) {
    return ErrnoStatus("rename " + staged_path + " ->", Path(name));
  }
  return Status::Ok();
}

Status BlobStore::SyncDir() const { return FsyncPath(dir_); }

Result<std::vector<std::string>> BlobStore::ListPacks(std::vector<std::string>* strangers) const {
  std::vector<std::string> packs;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (ValidPackName(name)) {
      packs.push_back(std::move(name));
    } else if (strangers) {
      strangers->push_back(std::move(name));
    }
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Status::Internal("listing " + dir_ + ": " + ec.message());
  }
  return packs;
}

}  // namespace gantry::storage
