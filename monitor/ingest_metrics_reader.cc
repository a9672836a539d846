#include "monitor/ingest_metrics_reader.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "common/ids.h"

namespace gantry::monitor {
namespace {

// A cursor over MessagePack bytes; every read checks the bounds and returns
// false on anything it does not handle.
class Reader {
 public:
  explicit Reader(std::string_view b)
      : p_(reinterpret_cast<const unsigned char*>(b.data())), n_(b.size()) {}

  size_t pos() const { return pos_; }
  bool done() const { return pos_ == n_; }

  bool MapHeader(size_t& count) {
    if (pos_ >= n_) return false;
    const unsigned char t = p_[pos_];
    if ((t & 0xf0) == 0x80) {
      count = t & 0x0f;
      ++pos_;
      return true;
    }
    if (t == 0xde) return Big(1, 2, count);
    if (t == 0xdf) return Big(1, 4, count);
    return false;
  }

  bool Str(std::string_view& s) {
    if (pos_ >= n_) return false;
    const unsigned char t = p_[pos_];
    size_t len = 0;
    if ((t & 0xe0) == 0xa0) {
      len = t & 0x1f;
      ++pos_;
    } else if (t == 0xd9) {
      if (!Big(1, 1, len)) return false;
    } else if (t == 0xda) {
      if (!Big(1, 2, len)) return false;
    } else if (t == 0xdb) {
      if (!Big(1, 4, len)) return false;
    } else {
      return false;
    }
    if (len > n_ - pos_) return false;
    s = std::string_view(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return true;
  }

  // An integer encoding whose value fits int64 (what is_number_integer and
  // get<int64_t> accept without wrapping).
  bool Int(int64_t& v) {
    if (pos_ >= n_) return false;
    const unsigned char t = p_[pos_];
    if (t <= 0x7f) {
      v = t;
      ++pos_;
      return true;
    }
    if (t >= 0xe0) {
      v = static_cast<int8_t>(t);
      ++pos_;
      return true;
    }
    uint64_t u = 0;
    switch (t) {
      case 0xcc: if (!Fixed(1, u)) return false; v = static_cast<int64_t>(u); return true;
      case 0xcd: if (!Fixed(2, u)) return false; v = static_cast<int64_t>(u); return true;
      case 0xce: if (!Fixed(4, u)) return false; v = static_cast<int64_t>(u); return true;
      case 0xcf:
        if (!Fixed(8, u) || u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
        v = static_cast<int64_t>(u);
        return true;
      case 0xd0: if (!Fixed(1, u)) return false; v = static_cast<int8_t>(u); return true;
      case 0xd1: if (!Fixed(2, u)) return false; v = static_cast<int16_t>(u); return true;
      case 0xd2: if (!Fixed(4, u)) return false; v = static_cast<int32_t>(u); return true;
      case 0xd3: if (!Fixed(8, u)) return false; v = static_cast<int64_t>(u); return true;
      default: return false;
    }
  }

  // Any number (is_number, get<double>).
  bool Number(double& d) {
    if (pos_ >= n_) return false;
    const unsigned char t = p_[pos_];
    uint64_t u = 0;
    if (t == 0xcb) {
      if (!Fixed(8, u)) return false;
      std::memcpy(&d, &u, sizeof d);
      return true;
    }
    if (t == 0xca) {
      if (!Fixed(4, u)) return false;
      const auto bits = static_cast<uint32_t>(u);
      float f;
      std::memcpy(&f, &bits, sizeof f);
      d = f;
      return true;
    }
    if (t == 0xcf) {  // uint64 beyond int64 is still a number
      if (!Fixed(8, u)) return false;
      d = static_cast<double>(u);
      return true;
    }
    int64_t i = 0;
    if (!Int(i)) return false;
    d = static_cast<double>(i);
    return true;
  }

 private:
  // Type byte, then `bytes` of big-endian length.
  bool Big(size_t skip, size_t bytes, size_t& out) {
    if (n_ - pos_ < skip + bytes) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; ++i) v = (v << 8) | p_[pos_ + skip + i];
    pos_ += skip + bytes;
    out = static_cast<size_t>(v);
    return true;
  }
  bool Fixed(size_t bytes, uint64_t& out) {
    size_t v = 0;
    if (!Big(1, bytes, v)) return false;
    out = v;
    return true;
  }

  const unsigned char* p_;
  size_t n_;
  size_t pos_ = 0;
};

enum BodyKey : unsigned {
  kJobId = 1u << 0,
  kAttempt = 1u << 1,
  kRank = 1u << 2,
  kWorldSize = 1u << 3,
  kStep = 1u << 4,
  kTotalSteps = 1u << 5,
  kEpoch = 1u << 6,
  kTime = 1u << 7,
  kValues = 1u << 8,
  kSeq = 1u << 9,
};
constexpr unsigned kRequired = kJobId | kAttempt | kRank | kStep | kEpoch | kTime | kValues;

bool ReadValues(Reader& r, MetricsPoint& p) {
  size_t n = 0;
  if (!r.MapHeader(n) || n == 0 || n > kMaxValuesPerPoint || n > 64) return false;
  p.values.clear();
  p.values.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::string_view name;
    double v = 0;
    if (!r.Str(name) || name.empty() || name.size() > kMaxMetricNameLength || !r.Number(v)) return false;
    p.values.emplace_back(std::string(name), v);
  }
  // A json map's order; a repeated name (last wins there) goes the slow way.
  if (!std::is_sorted(p.values.begin(), p.values.end(),
                      [](const auto& a, const auto& b) { return a.first < b.first; })) {
    std::sort(p.values.begin(), p.values.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  for (size_t i = 1; i < p.values.size(); ++i) {
    if (p.values[i].first == p.values[i - 1].first) return false;
  }
  return true;
}

bool ReadBody(Reader& r, MetricsPoint& p) {
  size_t n = 0;
  if (!r.MapHeader(n)) return false;
  unsigned seen = 0;
  for (size_t i = 0; i < n; ++i) {
    std::string_view key;
    if (!r.Str(key)) return false;
    unsigned bit = 0;
    int64_t ignored = 0;
    bool ok = false;
    if (key == "job_id") {
      bit = kJobId;
      std::string_view s;
      ok = r.Str(s);
      if (ok) p.job_id.assign(s.data(), s.size());
    } else if (key == "attempt") {
      bit = kAttempt;
      ok = r.Int(p.attempt) && p.attempt >= 0;
    } else if (key == "rank") {
      bit = kRank;
      ok = r.Int(p.rank) && p.rank >= 0;
    } else if (key == "world_size") {
      bit = kWorldSize;
      ok = r.Int(ignored);
    } else if (key == "step") {
      bit = kStep;
      ok = r.Int(p.step) && p.step >= 0;
    } else if (key == "total_steps") {
      bit = kTotalSteps;
      ok = r.Int(p.total_steps) && p.total_steps >= 0;
    } else if (key == "epoch") {
      bit = kEpoch;
      ok = r.Int(p.epoch) && p.epoch >= 0;
    } else if (key == "time") {
      bit = kTime;
      ok = r.Number(p.time) && std::isfinite(p.time);
    } else if (key == "values") {
      bit = kValues;
      ok = ReadValues(r, p);
    } else if (key == "seq") {
      bit = kSeq;
      ok = r.Int(p.seq) && p.seq >= 0;
    }
    if (!ok || (seen & bit)) return false;
    seen |= bit;
  }
  if ((seen & kRequired) != kRequired) return false;
  return ValidateName(p.job_id, "metrics: job_id").ok();
}

}  // namespace

bool ReadMetricsFrame(std::string_view frame, MetricsPoint& point, std::string_view& body) {
  Reader r(frame);
  size_t n = 0;
  if (!r.MapHeader(n)) return false;
  bool v = false, type = false, id = false, has_body = false;
  for (size_t i = 0; i < n; ++i) {
    std::string_view key;
    if (!r.Str(key)) return false;
    if (key == "v" && !v) {
      int64_t version = 0;
      if (!r.Int(version) || version != kProtocolVersion) return false;
      v = true;
    } else if (key == "type" && !type) {
      std::string_view t;
      if (!r.Str(t) || t != kMetricsType) return false;
      type = true;
    } else if (key == "id" && !id) {
      std::string_view ignored;
      if (!r.Str(ignored)) return false;
      id = true;
    } else if (key == "body" && !has_body) {
      const size_t start = r.pos();
      if (!ReadBody(r, point)) return false;
      body = frame.substr(start, r.pos() - start);
      has_body = true;
    } else {
      return false;
    }
  }
  return v && type && has_body && r.done();
}

}  // namespace gantry::monitor
