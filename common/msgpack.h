// MessagePack for nlohmann::json values, written for binary-heavy messages
// (a save_checkpoint request carries ~100 MB of tensor bytes as bin fields).
//
// The format is standard MessagePack and interoperates with
// nlohmann::json::to_msgpack/from_msgpack both ways; the encoder even makes
// the same (smallest) choices, so its bytes equal nlohmann's for the same
// value. What differs is the cost:
//   - Encoding first sizes the output, reserves it once, and appends every
//     string and binary with one copy (nlohmann grows the output by doubling,
//     touching fresh memory at every step).
//   - Decoding walks the bytes once, without recursion, checking every type
//     byte, declared length and the nesting depth before it reads or allocates
//     anything, and builds the json directly: a binary is one allocation and
//     one copy of its byte range (nlohmann reads it byte by byte).
// Neither function throws or recurses; hostile input gives an
// invalid_argument Status, never a crash, deep recursion or an allocation
// sized by a length field the bytes cannot back.
//
// Thread safety: stateless functions; Sizer/Appender are per-call objects.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace gantry::msgpack {

using json = nlohmann::json;

// Checks that `bytes` is exactly one well-formed MessagePack value: known
// type bytes, every declared length within what is left, at most `max_depth`
// levels of nesting, no trailing bytes. Map keys may be of any type here.
Status Validate(std::string_view bytes, int max_depth);

// Validate's checks plus: map keys must be strings (json has no others).
// Integers keep nlohmann's typing (uint8..64 and positive fixint unsigned,
// int8..64 and negative fixint signed), float32 widens to double, ext types
// become binaries with a subtype, a repeated map key keeps its last value.
Result<json> Parse(std::string_view bytes, int max_depth);

// The encoding of `j`: ints, floats and lengths in their smallest form
// (float32 when the double survives the round trip), binaries with a subtype
// as ext. A discarded value (never produced by parsing) encodes as nil.
// Strings, binaries, arrays and maps must hold fewer than 2^32 elements.
std::string Encode(const json& j);

// Building blocks for writing a message without first assembling it as one
// json (the protocol's envelope around a large body). Both classes have the
// same methods: Sizer counts bytes, Appender writes them.
class Sizer {
 public:
  void MapHeader(size_t n) { size_ += n <= 15 ? 1 : n <= 0xffff ? 3 : 5; }
  void ArrayHeader(size_t n) { MapHeader(n); }
  void String(std::string_view s) {
    const size_t n = s.size();
    size_ += n + (n <= 31 ? 1 : n <= 0xff ? 2 : n <= 0xffff ? 3 : 5);
  }
  void Bool(bool) { size_ += 1; }
  void Int(int64_t v);
  void Value(const json& j);

  size_t size() const { return size_; }

 private:
  size_t size_ = 0;
};

class Appender {
 public:
  // Appends to `out`; reserve it first (Write does) to copy each byte once.
  explicit Appender(std::string& out) : out_(out) {}
  void MapHeader(size_t n);
  void ArrayHeader(size_t n);
  void String(std::string_view s);
  void Bool(bool b) { out_.push_back(b ? '\xc3' : '\xc2'); }
  void Int(int64_t v);
  void Value(const json& j);

 private:
  std::string& out_;
};

// Buffers at least this large are advised to the kernel as wanting
// transparent huge pages before they are filled. A fresh 100 MiB buffer
// otherwise takes 25,600 page faults, which on the VMs Gantry was measured
// on cost more than copying the bytes (~0.4 s against ~0.03 s with 2 MiB
// pages). Only the 2 MiB-aligned inside of the buffer is advised, so no
// memory outside it changes; below 8 MiB the saving is too small to be worth
// the kernel's compaction work. A hint: without THP (or on other systems) it
// does nothing.
inline constexpr size_t kHugePageHintBytes = size_t{8} << 20;
// Advises [p, p + n) as above when n >= kHugePageHintBytes.
void AdviseHugePages(void* p, size_t n);

// Runs `write` (a generic callable taking `auto& w`) once with a Sizer and
// once with an Appender, into a string reserved to the exact size:
//   Write([&](auto& w) { w.MapHeader(1); w.String("body"); w.Value(body); });
template <class Fn>
std::string Write(Fn&& write) {
  Sizer sizer;
  write(sizer);
  std::string out;
  out.reserve(sizer.size());
  AdviseHugePages(out.data(), out.capacity());
  Appender appender(out);
  write(appender);
  return out;
}

}  // namespace gantry::msgpack
