#include "data/gzip_file.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

namespace gantry::data {
namespace {

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

}  // namespace

Result<std::string> ReadGzipOrPlain(const std::string& path, int64_t max_bytes,
                                    const std::string& what) {
  auto fail = [&](const std::string& why) {
    return Status::InvalidArgument(what + " " + path + ": " + why);
  };
  GzFile f(gzopen(path.c_str(), "rb"));
  if (!f) return fail(std::string("cannot open: ") + std::strerror(errno));
  gzbuffer(f.get(), 1 << 17);
  std::string out;
  std::vector<char> buf(1 << 16);
  while (true) {
    int n = gzread(f.get(), buf.data(), static_cast<unsigned>(buf.size()));
    if (n < 0) {
      int err = 0;
      return fail(std::string("read failed (corrupt gzip?): ") + gzerror(f.get(), &err));
    }
    if (n == 0) break;
    out.append(buf.data(), static_cast<size_t>(n));
    if (static_cast<int64_t>(out.size()) > max_bytes) {
      return fail("larger than " + std::to_string(max_bytes) + " bytes");
    }
  }
  // A gzip stream cut short reads as EOF; zlib reports it only here.
  int err = 0;
  const char* msg = gzerror(f.get(), &err);
  if (err != Z_OK && err != Z_STREAM_END) return fail(std::string("read failed (truncated gzip?): ") + msg);
  if (int rc = gzclose(f.release()); rc != Z_OK) {
    return fail("truncated or corrupt gzip stream (zlib error " + std::to_string(rc) + ")");
  }
  return out;
}

}  // namespace gantry::data
