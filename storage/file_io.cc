#include "storage/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gantry::storage {

Status ErrnoStatus(const std::string& what, const std::string& path) {
  const int err = errno;
  std::string msg = what + " " + path + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) {
    return Status::ResourceExhausted(msg + " (free disk space or tighten retention, then retry)");
  }
  if (err == ENOENT) return Status::NotFound(msg);
  return Status::Internal(msg);
}

Result<File> File::CreateNew(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("create", path);
  return File(fd, path);
}

Result<File> File::OpenRead(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open", path);
  return File(fd, path);
}

File& File::operator=(File&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    o.fd_ = -1;
  }
  return *this;
}

File::~File() {
  if (fd_ >= 0) ::close(fd_);
}

Status File::Write(std::span<const uint8_t> data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", path_);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

void File::StartWriteback() {
  // Advisory: an error here only loses the overlap, Sync() still decides.
  (void)::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
}

Status File::Sync() {
  if (::fdatasync(fd_) != 0) return ErrnoStatus("fdatasync", path_);
  return Status::Ok();
}

Status File::ReadAt(uint64_t offset, std::span<uint8_t> data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pread(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", path_);
    }
    if (n == 0) {
      return Status::Corruption(path_ + " is shorter than expected (" + std::to_string(offset + done) +
                                " bytes; needed " + std::to_string(offset + data.size()) +
                                "); run `gantry ckpt fsck`");
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status File::ReadExact(std::span<uint8_t> data) { return ReadAt(0, data); }

Result<uint64_t> File::Size() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return ErrnoStatus("stat", path_);
  return static_cast<uint64_t>(st.st_size);
}

Status File::Close() {
  if (fd_ < 0) return Status::Ok();
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) return ErrnoStatus("close", path_);
  return Status::Ok();
}

Result<std::vector<uint8_t>> ReadRange(const std::string& path, uint64_t offset, uint64_t bytes) {
  GANTRY_ASSIGN_OR_RETURN(File f, File::OpenRead(path));
  std::vector<uint8_t> out(bytes);
  GANTRY_RETURN_IF_ERROR(f.ReadAt(offset, out));
  return out;
}

}  // namespace gantry::storage
