#include "common/msgpack.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

namespace gantry::msgpack {
namespace {

// ---------------------------------------------------------------------------
// Encoding. One template writes every value against an output that either
// counts bytes (the size pass) or appends them, so both passes agree.

struct CountOut {
  size_t n = 0;
  void Byte(uint8_t) { ++n; }
  void Tagged(uint8_t, uint64_t, int width) { n += 1 + static_cast<size_t>(width); }
  void Raw(const void*, size_t k) { n += k; }
};

struct StringOut {
  std::string& s;
  void Byte(uint8_t b) { s.push_back(static_cast<char>(b)); }
  // `tag`, then the low `width` bytes of `v`, big-endian.
  void Tagged(uint8_t tag, uint64_t v, int width) {
    char buf[9];
    buf[0] = static_cast<char>(tag);
    for (int i = 0; i < width; ++i) buf[1 + i] = static_cast<char>(v >> (8 * (width - 1 - i)));
    s.append(buf, 1 + static_cast<size_t>(width));
  }
  void Raw(const void* p, size_t k) { s.append(static_cast<const char*>(p), k); }
};

// A length header: `fix` | n when the type has a fix form (fix != 0) and
// n <= fix_max, else the 8-bit form (tag8, when the type has one: tag8 != 0),
// the 16-bit form tag16 or the 32-bit form tag16 + 1.
template <class Out>
void PutHeader(Out& o, size_t n, uint8_t fix, size_t fix_max, uint8_t tag8, uint8_t tag16) {
  if (fix != 0 && n <= fix_max) {
    o.Byte(static_cast<uint8_t>(fix | n));
  } else if (tag8 != 0 && n <= 0xff) {
    o.Tagged(tag8, n, 1);
  } else if (n <= 0xffff) {
    o.Tagged(tag16, n, 2);
  } else {
    o.Tagged(static_cast<uint8_t>(tag16 + 1), n, 4);
  }
}

template <class Out>
void PutUint(Out& o, uint64_t v) {
  if (v < 128) {
    o.Byte(static_cast<uint8_t>(v));
  } else if (v <= 0xff) {
    o.Tagged(0xcc, v, 1);
  } else if (v <= 0xffff) {
    o.Tagged(0xcd, v, 2);
  } else if (v <= 0xffffffff) {
    o.Tagged(0xce, v, 4);
  } else {
    o.Tagged(0xcf, v, 8);
  }
}

template <class Out>
void PutInt(Out& o, int64_t v) {
  if (v >= 0) return PutUint(o, static_cast<uint64_t>(v));
  const auto u = static_cast<uint64_t>(v);  // two's complement: low bytes are the encoding
  if (v >= -32) {
    o.Byte(static_cast<uint8_t>(u));
  } else if (v >= std::numeric_limits<int8_t>::min()) {
    o.Tagged(0xd0, u, 1);
  } else if (v >= std::numeric_limits<int16_t>::min()) {
    o.Tagged(0xd1, u, 2);
  } else if (v >= std::numeric_limits<int32_t>::min()) {
    o.Tagged(0xd2, u, 4);
  } else {
    o.Tagged(0xd3, u, 8);
  }
}

template <class Out>
void PutFloat(Out& o, double d) {
  // float32 when nothing is lost (nlohmann's choice); NaN and infinities fail
  // the range test and stay float64.
  if (d >= static_cast<double>(std::numeric_limits<float>::lowest()) &&
      d <= static_cast<double>(std::numeric_limits<float>::max()) &&
      static_cast<double>(static_cast<float>(d)) == d) {
    const float f = static_cast<float>(d);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    o.Tagged(0xca, bits, 4);
  } else {
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    o.Tagged(0xcb, bits, 8);
  }
}

template <class Out>
void PutString(Out& o, std::string_view s) {
  PutHeader(o, s.size(), 0xa0, 31, 0xd9, 0xda);
  o.Raw(s.data(), s.size());
}

template <class Out>
void PutBinary(Out& o, const json::binary_t& b) {
  const size_t n = b.size();
  if (!b.has_subtype()) {
    PutHeader(o, n, 0, 0, 0xc4, 0xc5);
  } else {
    uint8_t fixext = 0;
    switch (n) {
      case 1: fixext = 0xd4; break;
      case 2: fixext = 0xd5; break;
      case 4: fixext = 0xd6; break;
      case 8: fixext = 0xd7; break;
      case 16: fixext = 0xd8; break;
      default: break;
    }
    if (fixext != 0) {
      o.Byte(fixext);
    } else {
      PutHeader(o, n, 0, 0, 0xc7, 0xc8);
    }
    o.Byte(static_cast<uint8_t>(b.subtype()));
  }
  o.Raw(b.data(), n);
}

// Everything but arrays and maps.
template <class Out>
void PutScalar(Out& o, const json& j) {
  switch (j.type()) {
    case json::value_t::boolean: o.Byte(j.get<bool>() ? 0xc3 : 0xc2); break;
    case json::value_t::number_integer: PutInt(o, *j.get_ptr<const json::number_integer_t*>()); break;
    case json::value_t::number_unsigned: PutUint(o, *j.get_ptr<const json::number_unsigned_t*>()); break;
    case json::value_t::number_float: PutFloat(o, *j.get_ptr<const json::number_float_t*>()); break;
    case json::value_t::string: PutString(o, *j.get_ptr<const json::string_t*>()); break;
    case json::value_t::binary: PutBinary(o, *j.get_ptr<const json::binary_t*>()); break;
    default: o.Byte(0xc0); break;  // null, discarded
  }
}

// Writes `root` depth-first with an explicit stack (a json built in memory can
// be arbitrarily deep; this never recurses).
template <class Out>
void PutValue(Out& o, const json& root) {
  struct Frame {
    const json::array_t* array;  // null for a map
    json::array_t::const_iterator a;
    json::object_t::const_iterator m, m_end;
  };
  std::vector<Frame> stack;
  const json* j = &root;
  while (j != nullptr) {
    if (j->is_array()) {
      const auto& arr = *j->get_ptr<const json::array_t*>();
      PutHeader(o, arr.size(), 0x90, 15, 0, 0xdc);
      if (!arr.empty()) stack.push_back({&arr, arr.begin(), {}, {}});
    } else if (j->is_object()) {
      const auto& obj = *j->get_ptr<const json::object_t*>();
      PutHeader(o, obj.size(), 0x80, 15, 0, 0xde);
      if (!obj.empty()) stack.push_back({nullptr, {}, obj.begin(), obj.end()});
    } else {
      PutScalar(o, *j);
    }
    // Next value: the next element of the innermost unfinished container.
    j = nullptr;
    while (!stack.empty()) {
      Frame& f = stack.back();
      if (f.array != nullptr && f.a != f.array->end()) {
        j = &*f.a++;
        break;
      }
      if (f.array == nullptr && f.m != f.m_end) {
        PutString(o, f.m->first);
        j = &f.m->second;
        ++f.m;
        break;
      }
      stack.pop_back();
    }
  }
}

// ---------------------------------------------------------------------------
// Decoding. One iterative walker checks the bytes and reports each value to a
// sink: a no-op sink validates, a building sink makes the json.

uint64_t ReadBe(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

// Sink for Validate: accepts everything.
struct NullSink {
  static constexpr bool kStringKeys = false;
  void Nil() {}
  void Bool(bool) {}
  void Uint(uint64_t) {}
  void Int(int64_t) {}
  void Float(double) {}
  void Str(const char*, size_t, bool) {}
  void Bin(const unsigned char*, size_t) {}
  void Ext(int8_t, const unsigned char*, size_t) {}
  void BeginArray(uint64_t) {}
  void BeginMap(uint64_t) {}
  void End() {}
};

// Sink for Parse: builds the json. Holds pointers to the open containers;
// they stay valid because an array only grows after its open child closed,
// and map values live in stable tree nodes.
class BuildSink {
 public:
  static constexpr bool kStringKeys = true;

  void Nil() { *Slot() = nullptr; }
  void Bool(bool b) { *Slot() = b; }
  void Uint(uint64_t v) { *Slot() = v; }
  void Int(int64_t v) { *Slot() = v; }
  void Float(double d) { *Slot() = d; }
  void Str(const char* p, size_t n, bool is_key) {
    if (is_key) {
      key_.assign(p, n);
    } else {
      *Slot() = json::string_t(p, n);
    }
  }
  void Bin(const unsigned char* p, size_t n) { *Slot() = json::binary(Bytes(p, n)); }
  void Ext(int8_t type, const unsigned char* p, size_t n) {
    *Slot() = json::binary(Bytes(p, n), static_cast<uint8_t>(type));
  }
  void BeginArray(uint64_t n) {
    json* slot = Slot();
    *slot = json::array();
    // Never trust a count with more than a small reservation: the walker
    // bounds it by the bytes left, not by what that would cost as json.
    slot->get_ptr<json::array_t*>()->reserve(static_cast<size_t>(std::min<uint64_t>(n, 1024)));
    open_.push_back(slot);
  }
  void BeginMap(uint64_t) {
    json* slot = Slot();
    *slot = json::object();
    open_.push_back(slot);
  }
  void End() { open_.pop_back(); }

  json Take() { return std::move(root_); }

 private:
  // One allocation, one copy.
  static json::binary_t::container_type Bytes(const unsigned char* p, size_t n) {
    json::binary_t::container_type v;
    v.reserve(n);
    AdviseHugePages(v.data(), n);
    v.assign(p, p + n);
    return v;
  }

  // Where the next value goes.
  json* Slot() {
    if (open_.empty()) return &root_;
    json* c = open_.back();
    if (auto* arr = c->get_ptr<json::array_t*>()) return &arr->emplace_back();
    // A repeated key keeps its last value, as nlohmann's parser does.
    return &(*c->get_ptr<json::object_t*>())[std::move(key_)];
  }

  json root_;
  std::vector<json*> open_;
  std::string key_;  // key of the value about to be read in the innermost map
};

template <class Sink>
Status Walk(std::string_view bytes, int max_depth, Sink& sink) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t pos = 0;
  struct Frame {
    uint64_t left;  // values still expected (a map counts keys and values)
    bool map;
  };
  std::vector<Frame> open;  // unfinished containers, innermost last
  bool read_root = false;
  auto bad = [&](const char* why) {
    return Status::InvalidArgument("malformed message at byte " + std::to_string(pos) + ": " + why);
  };
  auto need = [&](uint64_t k) { return k <= n - pos; };
  while (true) {
    while (!open.empty() && open.back().left == 0) {
      open.pop_back();
      sink.End();
    }
    bool is_key = false;
    if (!open.empty()) {
      Frame& f = open.back();
      is_key = f.map && f.left % 2 == 0;
      --f.left;
    } else if (read_root) {
      break;
    } else {
      read_root = true;
    }
    if (pos >= n) return bad("truncated");
    const unsigned char t = p[pos++];
    if constexpr (Sink::kStringKeys) {
      if (is_key && !((t >= 0xa0 && t <= 0xbf) || (t >= 0xd9 && t <= 0xdb))) return bad("map key must be a string");
    }
    if (t <= 0x7f) {
      sink.Uint(t);
      continue;
    }
    if (t >= 0xe0) {
      sink.Int(static_cast<int8_t>(t));
      continue;
    }
    if (t >= 0xa0 && t <= 0xbf) {
      const size_t len = t & 0x1f;
      if (!need(len)) return bad("truncated value");
      sink.Str(reinterpret_cast<const char*>(p + pos), len, is_key);
      pos += len;
      continue;
    }
    uint64_t children = 0;
    bool map = false;
    if (t >= 0x80 && t <= 0x8f) {
      children = 2ull * (t & 0x0f), map = true;
    } else if (t >= 0x90 && t <= 0x9f) {
      children = t & 0x0f;
    } else {
      // Fixed-width values: tag -> payload width.
      int width = 0;
      switch (t) {
        case 0xc0: sink.Nil(); continue;
        case 0xc2: sink.Bool(false); continue;
        case 0xc3: sink.Bool(true); continue;
        case 0xcc: case 0xd0: width = 1; break;
        case 0xcd: case 0xd1: width = 2; break;
        case 0xca: case 0xce: case 0xd2: width = 4; break;
        case 0xcb: case 0xcf: case 0xd3: width = 8; break;
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: {  // fixext 1/2/4/8/16
          const size_t len = size_t{1} << (t - 0xd4);
          if (!need(1 + len)) return bad("truncated value");
          sink.Ext(static_cast<int8_t>(p[pos]), p + pos + 1, len);
          pos += 1 + len;
          continue;
        }
        default: break;
      }
      if (width != 0) {
        if (!need(static_cast<uint64_t>(width))) return bad("truncated value");
        const uint64_t v = ReadBe(p + pos, width);
        pos += static_cast<size_t>(width);
        switch (t) {
          case 0xca: {
            const auto bits = static_cast<uint32_t>(v);
            float f;
            std::memcpy(&f, &bits, 4);
            sink.Float(f);
            break;
          }
          case 0xcb: {
            double d;
            std::memcpy(&d, &v, 8);
            sink.Float(d);
            break;
          }
          case 0xcc: case 0xcd: case 0xce: case 0xcf: sink.Uint(v); break;
          case 0xd0: sink.Int(static_cast<int8_t>(v)); break;
          case 0xd1: sink.Int(static_cast<int16_t>(v)); break;
          case 0xd2: sink.Int(static_cast<int32_t>(v)); break;
          default: sink.Int(static_cast<int64_t>(v)); break;
        }
        continue;
      }
      // Length-prefixed values: strings, binaries, exts, arrays, maps.
      int len_bytes = 0;
      switch (t) {
        case 0xc4: case 0xc7: case 0xd9: len_bytes = 1; break;
        case 0xc5: case 0xc8: case 0xda: case 0xdc: case 0xde: len_bytes = 2; break;
        case 0xc6: case 0xc9: case 0xdb: case 0xdd: case 0xdf: len_bytes = 4; break;
        default: return bad("unknown type byte");  // 0xc1
      }
      if (!need(static_cast<uint64_t>(len_bytes))) return bad("truncated length");
      const uint64_t len = ReadBe(p + pos, len_bytes);
      pos += static_cast<size_t>(len_bytes);
      if (t == 0xdc || t == 0xdd) {
        children = len;
      } else if (t == 0xde || t == 0xdf) {
        children = 2 * len, map = true;
      } else {
        const bool ext = t >= 0xc7 && t <= 0xc9;
        if (!need(len + (ext ? 1 : 0))) return bad("truncated value");
        if (ext) {
          sink.Ext(static_cast<int8_t>(p[pos]), p + pos + 1, len);
          ++pos;
        } else if (t >= 0xd9) {
          sink.Str(reinterpret_cast<const char*>(p + pos), len, is_key);
        } else {
          sink.Bin(p + pos, len);
        }
        pos += len;
        continue;
      }
    }
    // A container. Every value takes at least one byte: a count larger than
    // what is left cannot be honest, and must not drive an allocation.
    if (children > n - pos) return bad("container length exceeds message");
    // The pseudo-level of the top value counts, as it always has.
    if (static_cast<int>(open.size()) + 1 >= max_depth) return bad("nesting too deep");
    if (map) {
      sink.BeginMap(children / 2);
    } else {
      sink.BeginArray(children);
    }
    open.push_back({children, map});
  }
  if (pos != n) return bad("trailing bytes");
  return Status::Ok();
}

}  // namespace

void AdviseHugePages([[maybe_unused]] void* p, [[maybe_unused]] size_t n) {
#ifdef MADV_HUGEPAGE
  if (n < kHugePageHintBytes) return;
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const auto begin = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const auto end = (reinterpret_cast<uintptr_t>(p) + n) & ~(kHuge - 1);
  // Failure (no THP support, EINVAL on odd memory) only loses the hint.
  if (begin < end) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#endif
}

Status Validate(std::string_view bytes, int max_depth) {
  NullSink sink;
  return Walk(bytes, max_depth, sink);
}

Result<json> Parse(std::string_view bytes, int max_depth) {
  BuildSink sink;
  GANTRY_RETURN_IF_ERROR(Walk(bytes, max_depth, sink));
  return sink.Take();
}

std::string Encode(const json& j) {
  return Write([&](auto& w) { w.Value(j); });
}

void Sizer::Int(int64_t v) {
  CountOut o;
  PutInt(o, v);
  size_ += o.n;
}

void Sizer::Value(const json& j) {
  CountOut o;
  PutValue(o, j);
  size_ += o.n;
}

void Appender::MapHeader(size_t n) {
  StringOut o{out_};
  PutHeader(o, n, 0x80, 15, 0, 0xde);
}

void Appender::ArrayHeader(size_t n) {
  StringOut o{out_};
  PutHeader(o, n, 0x90, 15, 0, 0xdc);
}

void Appender::String(std::string_view s) {
  StringOut o{out_};
  PutString(o, s);
}

void Appender::Int(int64_t v) {
  StringOut o{out_};
  PutInt(o, v);
}

void Appender::Value(const json& j) {
  StringOut o{out_};
  PutValue(o, j);
}

}  // namespace gantry::msgpack
