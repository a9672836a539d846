#include "storage/inbox.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/ids.h"

namespace gantry::storage {
namespace {

Status Errno(const std::string& what) { return Status::Internal(what + ": " + std::strerror(errno)); }

bool ValidName(const std::string& name) {
  const std::string suffix = kInboxSuffix;
  if (name.size() <= suffix.size() || name.size() > 64 + suffix.size() || !name.ends_with(suffix)) return false;
  for (size_t i = 0; i + suffix.size() < name.size(); ++i) {
    const char c = name[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-')) return false;
  }
  return true;
}

}  // namespace

Result<MappedFile> MappedFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("inbox file " + path + " does not exist (write it again)");
    return Errno("open " + path);
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    Status s = Errno("stat " + path);
    ::close(fd);
    return s;
  }
  const auto size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return MappedFile(nullptr, 0);
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
  ::close(fd);  // the mapping keeps the file
  if (p == MAP_FAILED) return Errno("mmap " + path);
  return MappedFile(static_cast<const uint8_t*>(p), size);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

Result<Inbox> Inbox::Open(const std::string& root) {
  const std::string dir = root + "/" + kInboxFolder;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // what a crash left: never part of a version
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::Internal("inbox: creating " + dir + ": " + ec.message());
  const std::string token = NewSecretToken();
  std::ofstream out(dir + "/.token", std::ios::trunc);
  out << token;
  out.close();
  if (!out) return Status::Internal("inbox: writing " + dir + "/.token");
  return Inbox(dir, token);
}

Result<std::string> Inbox::PathOf(const std::string& name) const {
  if (!ValidName(name)) {
    return Status::InvalidArgument("inbox file name '" + name + "' must be 1..64 of [0-9a-z-] ending in .part");
  }
  return dir_ + "/" + name;
}

Status Inbox::PutChunk(const std::string& name, int64_t offset, std::span<const uint8_t> data) {
  GANTRY_ASSIGN_OR_RETURN(std::string path, PathOf(name));
  if (offset < 0) return Status::InvalidArgument("put_chunk: offset must be >= 0");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("put_chunk: open " + path);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, offset + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = Errno("put_chunk: write " + path);
      ::close(fd);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return Status::Ok();
}

void Inbox::Remove(const std::string& name) const {
  if (auto path = PathOf(name); path.ok()) ::unlink(path->c_str());
}

}  // namespace gantry::storage
