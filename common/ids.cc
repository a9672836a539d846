#include "common/ids.h"

#include <cstdio>
#include <ctime>
#include <random>

#include "common/clock.h"

namespace gantry {
namespace {
std::string RandomHex(int n) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(n, '0');
  for (auto& c : out) c = kHex[rng() & 15];
  return out;
}
}  // namespace

std::string NewJobId(const Clock& clock) {
  std::time_t t = static_cast<std::time_t>(clock.WallSeconds());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return "j-" + std::string(buf) + "-" + RandomHex(4);
}

std::string NewRequestId() { return RandomHex(16); }

std::string NewSecretToken() {
  std::random_device dev;  // /dev/urandom on Linux: unpredictable, unlike the ids' generator
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (size_t i = 0; i < out.size(); i += 8) {
    uint32_t bits = dev();
    for (size_t j = 0; j < 8; ++j, bits >>= 4) out[i + j] = kHex[bits & 15];
  }
  return out;
}

Status ValidateName(std::string_view name, std::string_view what) {
  if (name.empty() || name.size() > 128) {
    return Status::InvalidArgument(std::string(what) + " must be 1..128 characters (got " +
                                   std::to_string(name.size()) + ")");
  }
  if (name.front() == '.' || name.front() == '-') {
    return Status::InvalidArgument(std::string(what) + " '" + std::string(name) +
                                   "' must not start with '.' or '-'");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return Status::InvalidArgument(std::string(what) + " '" + std::string(name) +
                                     "' may only hold letters, digits, '.', '_' and '-'");
    }
  }
  return Status::Ok();
}

}  // namespace gantry
