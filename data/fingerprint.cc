#include "data/fingerprint.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "data/sha256.h"

namespace gantry::data {
namespace {

// Keeps one entry per manifest line whatever a file name contains.
std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\t') out += "\\t";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

Result<std::string> DataFingerprint::FileDigest(const std::string& path, int64_t* size) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    return Status::InvalidArgument("data fingerprint: cannot open " + path + ": " + std::strerror(errno));
  }
  Sha256 h;
  std::vector<char> buf(1 << 20);
  int64_t total = 0;
  while (size_t n = std::fread(buf.data(), 1, buf.size(), f.get())) {
    h.Update(buf.data(), n);
    total += static_cast<int64_t>(n);
  }
  if (std::ferror(f.get())) {
    return Status::InvalidArgument("data fingerprint: read error in " + path + ": " + std::strerror(errno));
  }
  if (size != nullptr) *size = total;
  return Sha256::Hex(h.Finish());
}

Status DataFingerprint::AddFile(const std::string& role, const std::string& name,
                                const std::string& path) {
  File file{role, name, 0, ""};
  GANTRY_ASSIGN_OR_RETURN(file.sha256, FileDigest(path, &file.size));
  manifest_ += "file\t" + Escape(role) + "\t" + Escape(name) + "\t" + std::to_string(file.size) +
               "\t" + file.sha256 + "\n";
  files_.push_back(std::move(file));
  return Status::Ok();
}

void DataFingerprint::AddSetting(const std::string& key, const std::string& value) {
  manifest_ += "setting\t" + Escape(key) + "\t" + Escape(value) + "\n";
}

std::string DataFingerprint::Hex() const { return Sha256::HexOf(manifest_); }

}  // namespace gantry::data
