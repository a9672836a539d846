// DataFingerprint: names the exact data a model was trained on.
//
// The fingerprint is the SHA-256 (64 hex digits) of a manifest with one line
// per entry, in the order they were added:
//   file <TAB> role <TAB> name <TAB> size <TAB> sha256-of-content
//   setting <TAB> key <TAB> value
// `name` is the file's path relative to data.path, so the same files mounted
// elsewhere on another host give the same fingerprint; renaming, adding,
// dropping or editing a file (even without changing its size) changes it.
// Settings record what changes the meaning of the same bytes (label column,
// limit). The loaders add entries in a fixed order (train files in the order
// read, then test files), so every rank and every run over the same data
// computes the same value. It is stored in each checkpoint's lineage.
//
// Files are read once more for the digest; data that is replaced while a job
// loads it must be replaced by rename (docs/worker.md), as shards are.
//
// Thread safety: an object is used by one thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace gantry::data {

class DataFingerprint {
 public:
  struct File {
    std::string role;  // "train" or "test"
    std::string name;  // relative to data.path
    int64_t size = 0;  // bytes on disk
    std::string sha256;
  };

  // Reads `path` to digest it and records it under `name`.
  Status AddFile(const std::string& role, const std::string& name, const std::string& path);
  void AddSetting(const std::string& key, const std::string& value);

  const std::vector<File>& files() const { return files_; }
  const std::string& manifest() const { return manifest_; }
  // SHA-256 of manifest(), 64 lowercase hex digits.
  std::string Hex() const;

  // SHA-256 of a file's content, as hex.
  static Result<std::string> FileDigest(const std::string& path, int64_t* size);

 private:
  std::vector<File> files_;
  std::string manifest_;
};

}  // namespace gantry::data
