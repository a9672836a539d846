#include "storage/staging_dir.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/ids.h"

namespace gantry::storage {

Result<StagingDir> StagingDir::Create(const std::string& parent) {
  // A random name rather than a counter: two savers never collide and a
  // leftover from a crash never blocks a new save.
  for (int i = 0; i < 8; ++i) {
    std::string path = parent + "/" + kStagingPrefix + NewRequestId();
    if (::mkdir(path.c_str(), 0755) == 0) return StagingDir(path);
    if (errno != EEXIST) {
      return Status::Internal("mkdir " + path + ": " + std::strerror(errno));
    }
  }
  return Status::Internal("cannot create a staging folder in " + parent);
}

StagingDir::~StagingDir() {
  if (!owned_) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Status StagingDir::RenameTo(const std::string& target) {
  // rename(2) of a folder onto an existing empty folder succeeds silently;
  // a version folder must never be replaced, so refuse any existing target.
  std::error_code ec;
  if (std::filesystem::exists(target, ec)) {
    return Status::AlreadyExists(target + " already exists");
  }
  if (std::rename(path_.c_str(), target.c_str()) != 0) {
    return Status::Internal("rename " + path_ + " -> " + target + ": " + std::strerror(errno));
  }
  path_ = target;
  return Status::Ok();
}

}  // namespace gantry::storage
