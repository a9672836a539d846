// Low-level file helpers for the checkpoint store: an owned descriptor and
// whole-buffer reads and writes with errno turned into Status.
//
// Durability is explicit: nothing here fsyncs unless asked. StartWriteback()
// asks the kernel to begin writing a file's dirty pages without waiting, so
// the disk works on one blob while the CPU hashes the next; Sync() then only
// waits for what is still in flight.
//
// Ownership: File owns its descriptor (closed on destruction); move-only.
// Thread safety: one owner thread per File; the free functions are reentrant.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace gantry::storage {

class File {
 public:
  File() = default;
  // O_WRONLY | O_CREAT | O_EXCL: a file that exists is an error.
  static Result<File> CreateNew(const std::string& path);
  static Result<File> OpenRead(const std::string& path);

  File(File&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  File& operator=(File&& o) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  const std::string& path() const { return path_; }
  Status Write(std::span<const uint8_t> data);
  // Starts writeback of everything written so far; does not wait.
  void StartWriteback();
  // fdatasync: the data and the size are durable.
  Status Sync();
  // Reads exactly data.size() bytes (short file: corruption).
  Status ReadExact(std::span<uint8_t> data);
  // Reads exactly `n` bytes at `offset`.
  Status ReadAt(uint64_t offset, std::span<uint8_t> data);
  Result<uint64_t> Size() const;
  Status Close();

 private:
  File(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

// Reads `bytes` bytes at `offset` of `path`.
Result<std::vector<uint8_t>> ReadRange(const std::string& path, uint64_t offset, uint64_t bytes);
// errno as a Status: "<what> <path>: <strerror>".
Status ErrnoStatus(const std::string& what, const std::string& path);

}  // namespace gantry::storage
