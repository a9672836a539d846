// BlobStore: content-addressed tensor bytes shared by every version of every
// model in one data dir, kept in pack files <data>/checkpoints/.packs/<name>.pack.
// (The leading '.' keeps the folder out of the model namespace: model names
// never start with '.'.)
//
// A blob is one tensor's bytes, named by its key: the ContentHash::Hex() of
// the bytes, or "<hex>-<n>" for the rare bytes whose hash equals an existing
// blob's but whose content differs (a hash match alone never shares a blob;
// SameBytes() compares the bytes first). The index maps a key to
// (pack, offset, bytes). A save appends all its new blobs to one new pack,
// so it costs one file and one fdatasync however many tensors it has, like
// a plain write of the state. Packs are immutable once published; the index
// decides when they die (when no blob in them is referenced) and garbage
// collection may copy the live blobs of a mostly dead pack into a new one.
//
// Ownership: a BlobStore is a path plus helpers; it owns no handles.
// Thread safety: const methods are reentrant; publishing and removing
// belong to the registry's thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "storage/content_hash.h"

namespace gantry::storage {

inline constexpr const char* kPackDirRel = "checkpoints/.packs";

// Where a blob's bytes are.
struct BlobLocation {
  std::string pack;  // pack name (no folder, with ".pack")
  uint64_t offset = 0;
  uint64_t bytes = 0;
};

class BlobStore {
 public:
  explicit BlobStore(std::string data_root)
      : root_(std::move(data_root)), dir_(root_ + "/" + kPackDirRel) {}

  // Creates the folder (durably) if missing.
  Status Init() const;
  const std::string& dir() const { return dir_; }
  std::string Path(const std::string& pack) const { return dir_ + "/" + pack; }
  static std::string RelPath(const std::string& pack) { return std::string(kPackDirRel) + "/" + pack; }
  // A fresh pack name, "<16 hex>.pack".
  static std::string NewPackName();
  // "<16 hex>.pack" only: nothing else can name a file, so a damaged index
  // cannot point outside the folder.
  static bool ValidPackName(const std::string& name);
  // 32 lowercase hex digits, optionally "-<decimal>".
  static bool ValidKey(const std::string& key);

  // True if the blob at `where` holds exactly `data`.
  Result<bool> SameBytes(const BlobLocation& where, std::span<const uint8_t> data) const;
  // The blob's bytes; corruption when the pack is missing or short.
  Result<std::vector<uint8_t>> Read(const BlobLocation& where) const;
  // Hash of the bytes at `where` (corruption when they cannot be read).
  Result<ContentHash> Hash(const BlobLocation& where) const;
  Result<uint64_t> PackSize(const std::string& pack) const;
  // Moves a written, fdatasync'ed pack into the folder as `name`; the
  // caller fsyncs the folder (SyncDir) before relying on it.
  Status Publish(const std::string& staged_path, const std::string& name) const;
  Status SyncDir() const;
  // Pack names in the folder; anything else goes to `strangers`.
  Result<std::vector<std::string>> ListPacks(std::vector<std::string>* strangers = nullptr) const;

 private:
  std::string root_;
  std::string dir_;
};

}  // namespace gantry::storage
