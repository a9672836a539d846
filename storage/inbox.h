// Inbox: the checkpoint data plane's landing folder, <data>/inbox/.
//
// A worker on the same host as storage does not push a checkpoint through
// one ZeroMQ frame: it writes the tensor bytes into a file here and sends
// only their layout (save_checkpoint_file); a remote worker streams the
// bytes into a file here in chunks (put_chunk) and then sends the same
// request. Storage maps the file, verifies each tensor's FastChecksum and
// commits through Registry::Save, the same path (and crash safety) as
// save_checkpoint; the file is removed afterwards, whatever the outcome.
//
// Same-host check: Open() writes a random token to <inbox>/.token and
// checkpoint_inbox replies with the folder and the token; a worker that
// reads the same token from that path sees the same folder.
//
// Crash safety: inbox files are never part of a version (Registry::Save
// copies the bytes into its own fsynced pack), so Open() simply removes
// whatever a crash left; a worker whose file vanished retries its save.
//
// Names: an inbox file name is 1..64 characters of [0-9a-z-] and ".part";
// nothing else is ever opened, so a request cannot reach outside the folder.
//
// Thread safety: one thread (the service's serve thread). Ownership: a
// MappedFile owns its mapping and descriptor (move-only).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/status.h"

namespace gantry::storage {

inline constexpr const char* kInboxFolder = "inbox";
inline constexpr const char* kInboxSuffix = ".part";
// put_chunk's largest chunk: a few frames per 100 MiB, each far below the
// service's message limit.
inline constexpr int64_t kInboxChunkBytes = 16 << 20;

class MappedFile {
 public:
  static Result<MappedFile> Open(const std::string& path);
  MappedFile(MappedFile&& o) noexcept : data_(o.data_), size_(o.size_) { o.data_ = nullptr; o.size_ = 0; }
  MappedFile& operator=(MappedFile&&) = delete;
  MappedFile(const MappedFile&) = delete;
  ~MappedFile();
  std::span<const uint8_t> bytes() const { return {data_, size_}; }

 private:
  MappedFile(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  const uint8_t* data_;
  size_t size_;
};

class Inbox {
 public:
  // Creates <root>/inbox/ (emptying it) and its token.
  static Result<Inbox> Open(const std::string& root);

  const std::string& dir() const { return dir_; }
  const std::string& token() const { return token_; }
  // <dir>/<name>, or invalid_argument when `name` is not an inbox name.
  Result<std::string> PathOf(const std::string& name) const;
  // Writes `data` at `offset` of inbox file `name` (creating it).
  Status PutChunk(const std::string& name, int64_t offset, std::span<const uint8_t> data);
  void Remove(const std::string& name) const;

 private:
  Inbox(std::string dir, std::string token) : dir_(std::move(dir)), token_(std::move(token)) {}
  std::string dir_;
  std::string token_;
};

}  // namespace gantry::storage

namespace gantry {
class RpcServer;
}

namespace gantry::storage {

class Registry;

// The data plane's requests (inbox_service.cc; docs/protocol.md):
//   checkpoint_inbox {} -> {dir, token, chunk_bytes}
//   put_chunk {file, offset, data: bin} -> {file, bytes}
//   save_checkpoint_file {model, step, file, tensors: [{name, dtype, shape,
//       offset, bytes, checksum}], request_id?, ...save_checkpoint's other
//       fields} -> as save_checkpoint
// Opens the inbox under registry.root(); without one (an unwritable data
// dir) nothing is registered and workers use save_checkpoint.
class RegistryFeed;
// `feed` (may be null) announces each version saved from the inbox.
void RegisterInboxHandlers(RpcServer& server, Registry& registry, RegistryFeed* feed);

}  // namespace gantry::storage
