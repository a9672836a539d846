// FileLock: an exclusive flock(2) on a file, held for the owner's lifetime.
//
// The registry takes one on <data>/checkpoints/.lock because startup
// recovery deletes staging folders: a second gantry-storage on the same data
// dir would delete the first one's saves in flight. The kernel drops the
// lock when the process dies, so a crash never leaves it stuck.
//
// Ownership: owns the descriptor; move-only. Thread safety: one owner.
#pragma once

#include <string>

#include "common/status.h"

namespace gantry::storage {

class FileLock {
 public:
  // failed_precondition if another process holds the lock.
  static Result<FileLock> Acquire(const std::string& path);

  FileLock(FileLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FileLock& operator=(FileLock&& o) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace gantry::storage
