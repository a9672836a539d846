#include "common/http/token.h"

#include <sys/random.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "common/fs.h"

namespace gantry::http {

Result<std::string> GenerateToken() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return AnnotateStatus(Status::Internal(std::string("getrandom: ") + std::strerror(errno)), __FILE__,
                            __LINE__);
    }
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

Result<std::string> LoadOrCreateToken(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return Status::Unavailable("token file " + path + ": " + std::strerror(errno));
    }
    GANTRY_ASSIGN_OR_RETURN(std::string token, GenerateToken());
    GANTRY_RETURN_IF_ERROR(WriteFileAtomic(path, token + "\n", 0600));
    return token;
  }
  if ((st.st_mode & 077) != 0) {
    return Status::FailedPrecondition("token file " + path +
                                      " is readable by group or others; run chmod 600 on it");
  }
  GANTRY_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  if (text.empty()) {
    return Status::FailedPrecondition("token file " + path + " is empty; delete it to get a new token");
  }
  return text;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

}  // namespace gantry::http
