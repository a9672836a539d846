#include "data/idx_reader.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <memory>

namespace gantry::data {
namespace {

constexpr uint8_t kTypeUnsignedByte = 0x08;
constexpr int kMaxDims = 4;

Status FileError(const std::string& path, const std::string& why) {
  return Status::InvalidArgument("IDX file " + path + ": " + why);
}

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

// Whole (decompressed) content of `path`, at most kMaxIdxBytes.
Result<std::string> ReadAll(const std::string& path) {
  GzFile f(gzopen(path.c_str(), "rb"));
  if (!f) return FileError(path, std::string("cannot open: ") + std::strerror(errno));
  gzbuffer(f.get(), 1 << 17);
  std::string out;
  char buf[1 << 16];
  while (true) {
    int n = gzread(f.get(), buf, sizeof buf);
    if (n < 0) {
      int err = 0;
      const char* msg = gzerror(f.get(), &err);
      return FileError(path, std::string("read failed (corrupt gzip?): ") + msg);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (static_cast<int64_t>(out.size()) > kMaxIdxBytes) {
      return FileError(path, "larger than " + std::to_string(kMaxIdxBytes) + " bytes");
    }
  }
  // A gzip stream cut short reads as EOF; zlib reports it only here.
  int err = 0;
  const char* msg = gzerror(f.get(), &err);
  if (err != Z_OK && err != Z_STREAM_END) {
    return FileError(path, std::string("read failed (truncated gzip?): ") + msg);
  }
  if (int rc = gzclose(f.release()); rc != Z_OK) {
    return FileError(path, "truncated or corrupt gzip stream (zlib error " + std::to_string(rc) + ")");
  }
  return out;
}

}  // namespace

Result<IdxArray> ReadIdx(const std::string& path) {
  GANTRY_ASSIGN_OR_RETURN(std::string bytes, ReadAll(path));
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  if (bytes.size() < 4) {
    return FileError(path, "too short for an IDX header (" + std::to_string(bytes.size()) + " bytes)");
  }
  if (p[0] != 0 || p[1] != 0) return FileError(path, "bad magic: not an IDX file");
  if (p[2] != kTypeUnsignedByte) {
    char type[8];
    std::snprintf(type, sizeof type, "0x%02x", p[2]);
    return FileError(path, std::string("element type ") + type +
                               " is not supported (only unsigned bytes, 0x08)");
  }
  int ndims = p[3];
  if (ndims < 1 || ndims > kMaxDims) {
    return FileError(path, "bad number of dimensions " + std::to_string(ndims) + " (1.." +
                               std::to_string(kMaxDims) + ")");
  }
  size_t header = 4 + 4 * static_cast<size_t>(ndims);
  if (bytes.size() < header) return FileError(path, "header cut short");
  IdxArray out;
  int64_t count = 1;
  for (int i = 0; i < ndims; ++i) {
    const uint8_t* d = p + 4 + 4 * i;
    int64_t dim = (int64_t{d[0]} << 24) | (int64_t{d[1]} << 16) | (int64_t{d[2]} << 8) | d[3];
    out.dims.push_back(dim);
    // Bounded by the file size below; stop early so the product cannot overflow.
    count = dim == 0 ? 0 : (count > kMaxIdxBytes / dim ? kMaxIdxBytes + 1 : count * dim);
  }
  int64_t have = static_cast<int64_t>(bytes.size() - header);
  if (count != have) {
    std::string shape;
    for (int64_t d : out.dims) shape += (shape.empty() ? "" : "x") + std::to_string(d);
    std::string want = count > kMaxIdxBytes ? "more than " + std::to_string(kMaxIdxBytes)
                                            : std::to_string(count);
    return FileError(path, "header says " + shape + " = " + want +
                               " bytes of data but the file holds " + std::to_string(have));
  }
  out.data.assign(p + header, p + bytes.size());
  return out;
}

Result<Dataset> LoadIdxDataset(const std::string& images_path, const std::string& labels_path,
                               int64_t limit) {
  GANTRY_ASSIGN_OR_RETURN(IdxArray images, ReadIdx(images_path));
  GANTRY_ASSIGN_OR_RETURN(IdxArray labels, ReadIdx(labels_path));
  if (images.dims.size() != 3) {
    return FileError(images_path, "images must have 3 dimensions [N, rows, cols] (got " +
                                      std::to_string(images.dims.size()) + ")");
  }
  if (labels.dims.size() != 1) {
    return FileError(labels_path, "labels must have 1 dimension [N] (got " +
                                      std::to_string(labels.dims.size()) + ")");
  }
  int64_t n = images.dims[0];
  if (labels.dims[0] != n) {
    return FileError(labels_path, "holds " + std::to_string(labels.dims[0]) + " labels but " +
                                      images_path + " holds " + std::to_string(n) + " images");
  }
  if (n == 0) return FileError(images_path, "holds no samples");
  if (limit > 0 && limit < n) n = limit;
  for (int64_t i = 0; i < n; ++i) {
    if (labels.data[i] >= kNumClasses) {
      return FileError(labels_path, "label " + std::to_string(labels.data[i]) + " at index " +
                                        std::to_string(i) + " is not below " +
                                        std::to_string(kNumClasses));
    }
  }
  int64_t rows = images.dims[1];
  int64_t cols = images.dims[2];
  Dataset ds;
  try {
    auto raw = torch::from_blob(images.data.data(), {n, 1, rows, cols}, torch::kUInt8);
    ds.images = raw.to(torch::kFloat32).div_(255.0).sub_(kPixelMean).div_(kPixelStd);
    ds.labels = torch::from_blob(labels.data.data(), {n}, torch::kUInt8).to(torch::kInt64);
  } catch (const std::exception& e) {
    return Status::Internal("building tensors from " + images_path + ": " + e.what());
  }
  return ds;
}

}  // namespace gantry::data
