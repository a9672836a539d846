// bench_protocol: encoding and decoding a checkpoint-sized request, the wire
// path of a save_checkpoint (docs/performance.md, "Checkpoint storage").
//
// The message is a save_checkpoint request whose body holds `large` tensors
// of 1 MiB and as many of 2 KiB as MessagePack bin fields (default 100 + 100:
// 100.2 MiB in 200 binaries). Contenders, alternating order every round:
//   encode  Gantry: EncodeRequest (common/protocol.h)
//           nlohmann: the old EncodeRequest, the body copied into an envelope
//             json, then json::to_msgpack into a std::string
//           memcpy: the floor, the same tensor bytes appended into one
//             freshly reserved string of the message's size
//   decode  Gantry: DecodeRequest
//           nlohmann: the old DecodeRequest, ValidateMsgpack then
//             json::from_msgpack, the body moved out of the envelope
//           memcpy: the floor, each tensor's bytes copied into a fresh vector
// Every side allocates its output fresh and frees it outside the clock, so
// page faults count the same for all. Prints one JSON line per figure
// (../../../shared/BENCHMARKS.md); `minflt` is page faults per operation.
//
//   bench_protocol [--rounds N] [--large L]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "common/protocol.h"

namespace gantry::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Stats {
  std::vector<double> seconds;
  std::vector<double> faults;

  static double MedianOf(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  }
  double Median() const { return MedianOf(seconds); }
  json ToJson(double mib) const {
    return {{"median_s", Median()},
            {"min_s", *std::min_element(seconds.begin(), seconds.end())},
            {"max_s", *std::max_element(seconds.begin(), seconds.end())},
            {"mib_per_s", mib / Median()},
            {"minflt", MedianOf(faults)}};
  }
};

long MinorFaults() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// Times `op` (the clock covers only it) into `stats`.
void Time(Stats& stats, const std::function<void()>& op) {
  const long f0 = MinorFaults();
  const auto t0 = Clock::now();
  op();
  stats.seconds.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  stats.faults.push_back(static_cast<double>(MinorFaults() - f0));
}

void PrintFigure(const std::string& metric, double value, size_t n, const json& gantry, const json& baseline,
                 const json& extra) {
  json j = {{"bench", "protocol"},  {"metric", metric}, {"value", std::round(value * 1000) / 1000}, {"unit", "x"},
            {"n", n},               {"gantry", gantry}, {"baseline", baseline}};
  for (const auto& [k, v] : extra.items()) j[k] = v;
  std::cout << j.dump() << std::endl;
}

std::vector<uint8_t> Random(size_t n, uint64_t& x) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i + 8 <= n; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(v.data() + i, &x, 8);
  }
  return v;
}

// The body bench_storage_save sends: a transformer-shaped state.
json MakeBody(int large) {
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  json tensors = json::array();
  for (int i = 0; i < large; ++i) {
    tensors.push_back({{"name", "layers." + std::to_string(i) + ".weight"},
                       {"dtype", "float32"},
                       {"shape", {512, 512}},
                       {"data", json::binary(Random(size_t{1} << 20, x))}});
    tensors.push_back({{"name", "layers." + std::to_string(i) + ".bias"},
                       {"dtype", "float32"},
                       {"shape", {512}},
                       {"data", json::binary(Random(2048, x))}});
  }
  return {{"model", "bench"}, {"step", 1}, {"tensors", std::move(tensors)}};
}

void Fail(const std::string& what) {
  std::fprintf(stderr, "bench_protocol: %s\n", what.c_str());
  std::exit(1);
}

int Main(int argc, char** argv) {
  int rounds = 7;
  int large = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--rounds") == 0) rounds = std::max(1, std::atoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--large") == 0) large = std::max(1, std::atoi(argv[i + 1]));
  }
  const json body = MakeBody(large);
  std::vector<const json::binary_t*> blobs;
  uint64_t tensor_bytes = 0;
  for (const auto& t : body["tensors"]) {
    blobs.push_back(&t["data"].get_binary());
    tensor_bytes += blobs.back()->size();
  }
  const std::string type = "save_checkpoint", id = "0123456789abcdef";

  // The old path, as common/protocol.cc had it.
  auto old_encode = [&] {
    json j = {{"v", kProtocolVersion}, {"type", type}, {"id", id}, {"body", body}};
    std::string out;
    json::to_msgpack(j, out);
    return out;
  };
  auto old_decode = [](std::string_view bytes) {
    if (!ValidateMsgpack(bytes).ok()) Fail("old decode: invalid");
    json j = json::from_msgpack(bytes.begin(), bytes.end());
    Request req;
    req.type = j["type"].get<std::string>();
    req.id = j["id"].get<std::string>();
    req.body = std::move(j["body"]);
    return req;
  };

  const std::string wire = EncodeRequest(type, id, "", body);
  const double mib = static_cast<double>(wire.size()) / (1 << 20);
  if (wire != old_encode()) Fail("encodings differ from the old path");
  {
    auto back = DecodeRequest(wire);
    if (!back.ok() || back->body != body) Fail("decode does not round-trip");
  }

  Stats enc, enc_old, enc_copy, dec, dec_old, dec_copy, body_copy;
  // Results live until after the clock stops, so freeing is never timed.
  std::vector<std::function<void()>> contenders = {
      [&] {
        std::string out;
        Time(enc, [&] { out = EncodeRequest(type, id, "", body); });
      },
      [&] {
        std::string out;
        Time(enc_old, [&] { out = old_encode(); });
      },
      [&] {
        std::string out;
        Time(enc_copy, [&] {
          out.reserve(wire.size());
          for (const auto* b : blobs) out.append(reinterpret_cast<const char*>(b->data()), b->size());
        });
      },
      [&] {
        Result<Request> r = Status::Internal("unset");
        Time(dec, [&] { r = DecodeRequest(wire); });
        if (!r.ok()) Fail(r.status().ToString());
      },
      [&] {
        Request r;
        Time(dec_old, [&] { r = old_decode(wire); });
      },
      [&] {
        std::vector<std::vector<uint8_t>> out;
        Time(dec_copy, [&] {
          out.reserve(blobs.size());
          const char* p = wire.data();
          for (const auto* b : blobs) {
            // Same sizes as the decoders allocate; the source is the wire buffer.
            out.emplace_back(reinterpret_cast<const uint8_t*>(p), reinterpret_cast<const uint8_t*>(p) + b->size());
            p += b->size();
          }
        });
      },
      [&] {
        // For context: what copying the body into a Request costs (RpcClient
        // builds one per call).
        json copy;
        Time(body_copy, [&] { copy = body; });
      },
  };
  for (auto& c : contenders) c();  // warm-up: allocator and page cache
  for (Stats* s : {&enc, &enc_old, &enc_copy, &dec, &dec_old, &dec_copy, &body_copy}) *s = Stats{};
  for (int r = 0; r < rounds; ++r) {
    for (size_t k = 0; k < contenders.size(); ++k) {
      // Rotate and, every other round, reverse the order.
      size_t i = (k + static_cast<size_t>(r)) % contenders.size();
      if (r % 2) i = contenders.size() - 1 - i;
      contenders[i]();
    }
  }

  const json message = {{"message_mib", mib},
                        {"tensor_mib", static_cast<double>(tensor_bytes) / (1 << 20)},
                        {"binaries", blobs.size()}};
  const size_t n = static_cast<size_t>(rounds);
  PrintFigure("encode_speedup_vs_nlohmann", enc_old.Median() / enc.Median(), n, enc.ToJson(mib), enc_old.ToJson(mib),
              {{"message", message}, {"baseline_is", "json envelope + json::to_msgpack (the old EncodeRequest)"}});
  PrintFigure("encode_ratio_vs_memcpy", enc_copy.Median() / enc.Median(), n, enc.ToJson(mib), enc_copy.ToJson(mib),
              {{"message", message},
               {"baseline_is", "the tensor bytes appended into one fresh reserved string"},
               {"json_copy_of_body", body_copy.ToJson(mib)}});
  PrintFigure("decode_speedup_vs_nlohmann", dec_old.Median() / dec.Median(), n, dec.ToJson(mib), dec_old.ToJson(mib),
              {{"message", message}, {"baseline_is", "ValidateMsgpack + json::from_msgpack (the old DecodeRequest)"}});
  PrintFigure("decode_ratio_vs_memcpy", dec_copy.Median() / dec.Median(), n, dec.ToJson(mib), dec_copy.ToJson(mib),
              {{"message", message}, {"baseline_is", "each tensor's bytes copied into a fresh vector"}});
  return 0;
}

}  // namespace
}  // namespace gantry::bench

int main(int argc, char** argv) { return gantry::bench::Main(argc, argv); }
