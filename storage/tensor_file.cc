#include "storage/tensor_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/crc.hpp>
#include <cerrno>
#include <cstring>

namespace gantry::storage {
namespace {

// Closes the descriptor on every path out of WriteTensorFile.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

Status Errno(const std::string& what, const std::string& path) {
  return Status::Internal(what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

json TensorEntry::ToJson() const {
  return {{"name", name}, {"dtype", DTypeName(dtype)}, {"shape", shape},
          {"offset", offset}, {"bytes", bytes},        {"crc32", crc32}};
}

uint32_t Crc32(const uint8_t* bytes, size_t n) {
  boost::crc_32_type crc;
  crc.process_bytes(bytes, n);
  return crc.checksum();
}

Result<std::vector<TensorEntry>> WriteTensorFile(const std::string& path,
                                                 const std::vector<TensorData>& tensors) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) return Errno("create", path);
  std::vector<TensorEntry> entries;
  entries.reserve(tensors.size());
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    size_t done = 0;
    while (done < t.data.size()) {
      ssize_t n = ::write(fd.get(), t.data.data() + done, t.data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Errno("write", path);
      }
      done += static_cast<size_t>(n);
    }
    entries.push_back({t.name, t.dtype, t.shape, offset, t.data.size(),
                       Crc32(t.data.data(), t.data.size())});
    offset += t.data.size();
  }
  if (::fsync(fd.get()) != 0) return Errno("fsync", path);
  return entries;
}

}  // namespace gantry::storage
