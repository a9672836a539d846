#include "worker/checkpoint_plane.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/fast_checksum.h"
#include "worker/checkpoint_client.h"

namespace gantry::worker {
namespace {

Status Errno(const std::string& what) { return Status::Unavailable(what + ": " + std::strerror(errno)); }

// Calls `put(bytes, n)` with the tensors' bytes in order and returns their
// layout. Tensors are contiguous CPU snapshots; others are copied first.
template <typename Put>
Result<json> ForEachTensor(const model::TensorMap& tensors, Put put) {
  json out = json::array();
  int64_t offset = 0;
  for (const auto& [name, t] : tensors) try {
    GANTRY_ASSIGN_OR_RETURN(std::string dtype, DtypeName(t.scalar_type()));
    torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    const auto* p = static_cast<const uint8_t*>(c.data_ptr());
    const auto n = static_cast<size_t>(c.nbytes());
    GANTRY_RETURN_IF_ERROR(put(p, n));
    out.push_back({{"name", name},
                   {"dtype", dtype},
                   {"shape", c.sizes().vec()},
                   {"offset", offset},
                   {"bytes", static_cast<int64_t>(n)},
                   {"checksum", FastChecksum(p, n)}});
    offset += static_cast<int64_t>(n);
  } catch (const std::exception& e) {
    return Status::Internal("checkpoint: copying tensor " + name + ": " + e.what());
  }
  return out;
}

bool SameHost(const std::string& dir, const std::string& token) {
  std::ifstream in(dir + "/.token");
  std::stringstream s;
  s << in.rdbuf();
  return in.good() || in.eof() ? s.str() == token : false;
}

}  // namespace

Result<InboxUpload> UploadToInbox(RpcClient& rpc, const json& inbox, const model::TensorMap& tensors,
                                  const std::string& id, std::chrono::milliseconds timeout) {
  InboxUpload up;
  up.file = id + ".part";
  const std::string dir = inbox.value("dir", "");
  const std::string token = inbox.value("token", "");
  const int64_t chunk = std::max<int64_t>(1 << 20, inbox.value("chunk_bytes", int64_t{16 << 20}));
  up.same_host = !dir.empty() && !token.empty() && SameHost(dir, token);
  if (up.same_host) {
    up.local_path = dir + "/" + up.file;
    const int fd = ::open(up.local_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Errno("checkpoint inbox: open " + up.local_path);
    // Storage usually takes this file as the version's pack and fdatasyncs
    // it (storage/registry.h, SourceFile): start its writeback as it grows,
    // so the disk works while the rest is written, checksummed and hashed.
    // Advisory; an error only loses the overlap.
    constexpr size_t kWritebackEvery = 4 << 20;
    size_t unkicked = 0;
    auto layout = ForEachTensor(tensors, [&](const uint8_t* p, size_t n) -> Status {
      while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return Errno("checkpoint inbox: write " + up.local_path);
        p += w;
        n -= static_cast<size_t>(w);
        unkicked += static_cast<size_t>(w);
        if (unkicked >= kWritebackEvery) {
          (void)::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
          unkicked = 0;
        }
      }
      return Status::Ok();
    });
    if (::close(fd) != 0 && layout.ok()) layout = Errno("checkpoint inbox: close " + up.local_path);
    if (!layout.ok()) {
      ::unlink(up.local_path.c_str());
      return layout.status();
    }
    up.tensors = std::move(layout).value();
    return up;
  }
  // Remote: chunks of at most `chunk` bytes, in order.
  std::vector<uint8_t> buf;
  buf.reserve(static_cast<size_t>(chunk));
  int64_t sent = 0;
  auto flush = [&]() -> Status {
    if (buf.empty()) return Status::Ok();
    json body = {{"file", up.file}, {"offset", sent}, {"data", json::binary(buf)}};
    auto r = rpc.Call("put_chunk", body, timeout);
    if (!r.ok()) return r.status().WithContext("put_chunk to " + rpc.endpoint());
    sent += static_cast<int64_t>(buf.size());
    buf.clear();
    return Status::Ok();
  };
  auto layout = ForEachTensor(tensors, [&](const uint8_t* p, size_t n) -> Status {
    while (n > 0) {
      const size_t take = std::min(n, static_cast<size_t>(chunk) - buf.size());
      buf.insert(buf.end(), p, p + take);
      p += take;
      n -= take;
      if (static_cast<int64_t>(buf.size()) == chunk) GANTRY_RETURN_IF_ERROR(flush());
    }
    return Status::Ok();
  });
  GANTRY_RETURN_IF_ERROR(layout.status());
  GANTRY_RETURN_IF_ERROR(flush());
  if (sent == 0) {  // no bytes at all: the file must still exist
    auto r = rpc.Call("put_chunk", {{"file", up.file}, {"offset", 0}, {"data", json::binary(std::vector<uint8_t>{})}}, timeout);
    if (!r.ok()) return r.status().WithContext("put_chunk to " + rpc.endpoint());
  }
  up.tensors = std::move(layout).value();
  return up;
}

}  // namespace gantry::worker
