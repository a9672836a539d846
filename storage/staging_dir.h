// StagingDir: the folder a checkpoint version is built in before it becomes
// visible, <model_dir>/.staging-<random>/.
//
// Ownership: the StagingDir owns its folder and deletes it (recursively) on
// destruction unless Keep() was called; after RenameTo() it owns the folder
// under its new name, so a failure between the rename and the SQLite commit
// still removes the half-published version. Move-only.
// Thread safety: one owner thread.
#pragma once

#include <string>

#include "common/status.h"

namespace gantry::storage {

inline constexpr const char* kStagingPrefix = ".staging-";

class StagingDir {
 public:
  // Creates a fresh, uniquely named staging folder inside `parent`.
  static Result<StagingDir> Create(const std::string& parent);

  StagingDir(StagingDir&& o) noexcept : path_(std::move(o.path_)), owned_(o.owned_) { o.owned_ = false; }
  StagingDir& operator=(StagingDir&&) = delete;
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;
  ~StagingDir();

  const std::string& path() const { return path_; }
  // rename(2) to `target`, which must not exist yet.
  Status RenameTo(const std::string& target);
  // The folder is committed: leave it in place.
  void Keep() { owned_ = false; }

 private:
  explicit StagingDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
  bool owned_ = true;
};

}  // namespace gantry::storage
