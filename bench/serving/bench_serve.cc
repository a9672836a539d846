// gantry-serve's throughput and latency against a raw LibTorch forward loop
// (docs/performance.md, "Serving"). In one process: an mlp [256, 128] for
// 1x28x28 inputs with seeded random weights, served through the real stack
// (codec, batcher, slot, HTTP on loopback), loaded by keep-alive Beast
// clients. Prints one JSON line per figure:
//   throughput_c64_vs_raw   rows/s at concurrency 64, max_batch 64, vs a raw
//                           forward loop at batch 64 (goal >= 0.5x)
//   batching_vs_batch1      the same vs max_batch 1 (goal >= 3x)
//   p50_c1_minus_forward_us p50 at concurrency 1 minus the raw batch-1
//                           forward time (goal <= 100 us)
//   p99_alias_moves_vs_steady  p99 at concurrency 64 over a window in which
//                           the deployment swaps version 10 times (each a
//                           new version built and warmed beside the one
//                           serving, then Install: what the reloader does
//                           after an alias_moved event, without the registry
//                           fetch), vs the p99 of the same window without
//                           swaps (goal <= 2x)
//   p50_c1_stages_us        where the p50 at concurrency 1 goes: the KServe
//                           JSON decode alone, and DeployedModel::Infer
//                           called in-process (decode, batcher, forward,
//                           encode; no HTTP), each minus nothing
//   *_binary                the same figures with the KServe v2 binary
//                           tensor extension (input bytes after the JSON
//                           header, logits returned in binary) instead of
//                           JSON numbers; the goal rows stay the JSON ones
//   binary_decode_us        DecodeInferRequest of the binary request alone
//   throughput_16rows_c16_binary_vs_raw  NOT a goal row: requests of 16 rows
//                           each (binary), 16 clients, rows/s vs the same
//                           raw forward loop at batch 64
//   http_floor_c1_us        p50 of GET /v2/health/live on one keep-alive
//                           connection: the HTTP round trip alone
//   mean_batch_rows_c64_binary  rows per batch during the binary c64 load
//                           (baseline field: the share of batches the fast
//                           path ran inline)
//   cpu_us_per_request      process CPU time (server and load clients, both
//                           in this process) per answered request at
//                           concurrency 64, JSON and binary
//   int8_vs_fp32_b64        forward latency at batch 64, int8 / fp32
//   int8_accuracy_diff      test accuracy of the int8 version minus the fp32
//                           one, on the 10,000 Fashion-MNIST test images,
//                           both from the same weights trained here for one
//                           epoch (skipped without the dataset)
// The raw forward baseline is TorchServable::Logits on a tensor: the
// LibTorch forward with the model's normalisation, no codec, batcher or HTTP.
//
//   bench_serve [--seconds S] [--rounds R]
// Exploration knobs (docs/performance.md, "Serving", findings):
// BENCH_HTTP_THREADS=N serves with N HTTP threads instead of one per core;
// BENCH_NODELAY=1 sets TCP_NODELAY on the load clients' sockets;
// BENCH_INLINE=1 turns the batcher's idle fast path on (off by default:
// DeploymentOptions::run_inline_when_idle).
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "common/http/server.h"
#include "data/idx_reader.h"
#include "serving/deployed_model.h"
#include "serving/int8_linear.h"
#include "serving/serve_routes.h"
#include "serving/torch_servable.h"

namespace {

using namespace gantry;
using namespace gantry::serving;
using Clock = std::chrono::steady_clock;

constexpr const char* kFashion = "/usr/share/datasets/fashion-mnist/";

// One epoch of the demo job's training (SGD lr 0.05 momentum 0.9, batch 64)
// on Fashion-MNIST; false without the dataset.
bool Train(model::Model& m) {
  auto train = data::LoadIdxDataset(std::string(kFashion) + "train-images-idx3-ubyte.gz",
                                    std::string(kFashion) + "train-labels-idx1-ubyte.gz");
  if (!train.ok()) return false;
  torch::optim::SGD opt(m.Parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  m.SetTraining(true);
  const int64_t n = train->size();
  torch::Tensor perm = torch::randperm(n);
  for (int64_t i = 0; i + 64 <= n; i += 64) {
    torch::Tensor idx = perm.narrow(0, i, 64);
    opt.zero_grad();
    auto out = m.Forward(train->images.index_select(0, idx));
    if (!out.ok()) return false;
    torch::nn::functional::cross_entropy(*out, train->labels.index_select(0, idx)).backward();
    opt.step();
  }
  m.SetTraining(false);
  return true;
}

// Version `version` of the bench model: seeded random weights, or (train)
// one epoch of training from them.
LoadedVersion MakeVersion(bool int8, int64_t version = 1, bool train = false, bool* trained = nullptr) {
  torch::manual_seed(static_cast<uint64_t>(version));
  ModelSpec spec;
  spec.builtin = "mlp";
  spec.hidden = {256, 128};
  auto m = model::CreateModel(spec, {1, 28, 28}, 10);
  if (train) {
    const bool ok = Train(**m);
    if (trained) *trained = ok;
  }
  LoadedVersion v;
  v.model = "bench";
  v.version = version;
  v.manifest.builtin = "mlp";
  v.manifest.hidden = spec.hidden;
  v.manifest.input_shape = {1, 28, 28};
  v.manifest.num_classes = 10;
  v.manifest.normalize = model::Normalization{0.286, 0.353};
  for (const auto& [n, t] : (*m)->StateDict()) v.tensors[n] = t.detach().clone();
  if (int8) v.quantization = kQuantizationDynamicInt8;
  return v;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Seconds per forward of `batch` rows, median over `iters`.
double ForwardSeconds(const TorchServable& s, int64_t batch, int iters) {
  torch::Tensor x = torch::rand({batch, 1, 28, 28}) * 255;
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    auto start = Clock::now();
    auto r = s.Logits(x);
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  return Median(t);
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

struct LoadResult {
  double rows_per_s = 0;
  double p50_s = 0;
  double p99_s = 0;
  uint64_t failed = 0;
  double cpu_s_per_request = 0;  // process CPU (server + clients) per answer
};

double ProcessCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// A request body of `rows` random 28x28 images: JSON numbers, or (binary)
// the KServe v2 binary tensor extension with the logits asked back in binary.
struct RequestBody {
  std::string body;
  size_t header_length = 0;  // 0: plain JSON
  int rows = 1;
};

RequestBody MakeBody(bool binary, int rows = 1) {
  torch::Tensor x = (torch::rand({rows * 784}) * 255).round();
  InferRequest req;
  Tensor t;
  t.name = "input";
  t.shape = {rows, 784};
  t.data = std::vector<float>(x.data_ptr<float>(), x.data_ptr<float>() + rows * 784);
  req.inputs.push_back(std::move(t));
  if (binary) req.parameters["binary_data_output"] = true;
  EncodedBody enc = EncodeInferRequest(req, binary ? std::set<std::string>{"input"} : std::set<std::string>{});
  return {std::move(enc.body), binary ? enc.json_length : 0, rows};
}

// `concurrency` keep-alive clients posting `request` for `seconds`; `during`
// (if any) runs on its own thread meanwhile, and is joined before the
// clients stop.
LoadResult Load(uint16_t port, int concurrency, double seconds, std::function<void()> during = nullptr,
                const RequestBody& request = MakeBody(false)) {
  namespace bhttp = boost::beast::http;
  const std::string& body = request.body;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0}, failed{0};
  std::vector<std::vector<double>> lat(concurrency);
  std::vector<std::thread> threads;
  for (int c = 0; c < concurrency; ++c) {
    threads.emplace_back([&, c] {
      boost::asio::io_context ioc;
      boost::asio::ip::tcp::socket sock(ioc);
      sock.connect({boost::asio::ip::make_address("127.0.0.1"), port});
      if (std::getenv("BENCH_NODELAY")) sock.set_option(boost::asio::ip::tcp::no_delay(true));
      boost::beast::flat_buffer buf;
      while (!stop.load()) {
        bhttp::request<bhttp::string_body> req(bhttp::verb::post, "/v2/models/bench/infer", 11);
        req.set(bhttp::field::host, "127.0.0.1");
        if (request.header_length > 0) req.set(kInferenceHeaderContentLength, std::to_string(request.header_length));
        req.body() = body;
        req.prepare_payload();
        auto start = Clock::now();
        boost::beast::error_code ec;
        bhttp::write(sock, req, ec);
        bhttp::response<bhttp::string_body> res;
        if (!ec) bhttp::read(sock, buf, res, ec);
        if (ec || res.result_int() != 200) {
          ++failed;
          if (ec) return;
          continue;
        }
        lat[c].push_back(std::chrono::duration<double>(Clock::now() - start).count());
        ++done;
      }
    });
  }
  auto start = Clock::now();
  const double cpu0 = ProcessCpuSeconds();
  const uint64_t done0 = done.load();
  std::thread side;
  if (during) side = std::thread(during);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  if (side.joinable()) side.join();
  const double cpu = ProcessCpuSeconds() - cpu0;
  const uint64_t answered = done.load() - done0;
  stop = true;
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& t : threads) t.join();
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  return {static_cast<double>(done.load()) * request.rows / elapsed, Median(all), Quantile(all, 0.99), failed.load(),
          answered > 0 ? cpu / static_cast<double>(answered) : 0};
}

// p50 of `n` GET /v2/health/live on one keep-alive connection: the HTTP
// round trip alone (client and server), with no codec, batcher or forward.
double HttpFloorSeconds(uint16_t port, int n) {
  namespace bhttp = boost::beast::http;
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket sock(ioc);
  sock.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  boost::beast::flat_buffer buf;
  std::vector<double> t;
  for (int i = 0; i < n; ++i) {
    bhttp::request<bhttp::string_body> req(bhttp::verb::get, "/v2/health/live", 11);
    req.set(bhttp::field::host, "127.0.0.1");
    auto start = Clock::now();
    bhttp::write(sock, req);
    bhttp::response<bhttp::string_body> res;
    bhttp::read(sock, buf, res);
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    if (res.result_int() != 200) std::abort();
  }
  return Median(t);
}

// One served deployment on a free port.
struct Served {
  std::unique_ptr<DeployedModel> model;
  std::unique_ptr<http::HttpServer> server;
};

Served Serve(std::shared_ptr<const TorchServable> s, size_t max_batch) {
  Served out;
  DeploymentOptions o;
  o.name = "bench";
  o.registry_model = "bench";
  o.ref = "v1";
  o.row_size = s->row_size();
  o.max_batch = max_batch;
  o.run_inline_when_idle = std::getenv("BENCH_INLINE") != nullptr;
  out.model = std::make_unique<DeployedModel>(o, ServingMetricsOptions{});
  out.model->Install(s, s->Metadata("bench"));
  auto router = MakeServeRouter({out.model.get()});
  http::HttpServerOptions ho;
  ho.port = 0;
  ho.threads = std::getenv("BENCH_HTTP_THREADS") ? std::atoi(std::getenv("BENCH_HTTP_THREADS"))
                                                 : static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
  ho.max_body_bytes = 8 << 20;
  ho.max_connections = 256;
  ho.server_name = "gantry-serve";
  out.server = std::make_unique<http::HttpServer>(ho, *router);
  if (!out.server->Start().ok()) std::abort();
  return out;
}

// One figure; `gantry` and `baseline` are the samples (times `scale`) whose
// medians and [min, max] it prints.
void Line(const char* metric, double value, const char* unit, const std::vector<double>& gantry,
          const std::vector<double>& baseline, double scale = 1, const char* extra = "") {
  auto mm = [scale](const std::vector<double>& v) {
    return std::make_tuple(Median(v) * scale, *std::min_element(v.begin(), v.end()) * scale,
                           *std::max_element(v.begin(), v.end()) * scale);
  };
  auto [g, gmin, gmax] = mm(gantry);
  auto [b, bmin, bmax] = mm(baseline);
  std::printf("{\"bench\":\"serve\",\"metric\":\"%s\",\"value\":%.4g,\"unit\":\"%s\",\"n\":%zu,\"gantry\":%.6g,"
              "\"gantry_min\":%.6g,\"gantry_max\":%.6g,\"baseline\":%.6g,\"baseline_min\":%.6g,"
              "\"baseline_max\":%.6g%s}\n",
              metric, value, unit, gantry.size(), g, gmin, gmax, b, bmin, bmax, extra);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 3;
  int rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atof(argv[i + 1]);
    if (std::strcmp(argv[i], "--rounds") == 0) rounds = std::atoi(argv[i + 1]);
  }
  auto fp32 = TorchServable::Create(MakeVersion(false), false);
  if (!fp32.ok()) {
    std::fprintf(stderr, "%s\n", fp32.status().ToString().c_str());
    return 1;
  }
  std::vector<double> raw64, c64, c64b1, p50, fwd1, infer1, decode1;
  std::vector<double> c64bin, p50bin, infer1bin, decodebin, rows16, cpu_json, cpu_bin, mean_batch, inline_share,
      http_floor;
  const RequestBody json_body = MakeBody(false);
  const RequestBody bin_body = MakeBody(true);
  const RequestBody bin16_body = MakeBody(true, 16);
  for (int r = 0; r < rounds; ++r) {
    raw64.push_back(64.0 / ForwardSeconds(**fp32, 64, 200));
    fwd1.push_back(ForwardSeconds(**fp32, 1, 500));
    {
      Served s = Serve(*fp32, 64);
      LoadResult lj = Load(s.server->port(), 64, seconds, nullptr, json_body);
      c64.push_back(lj.rows_per_s);
      cpu_json.push_back(lj.cpu_s_per_request);
      p50.push_back(Load(s.server->port(), 1, seconds, nullptr, json_body).p50_s);
      const Batcher::Stats b0 = s.model->batcher_stats();
      LoadResult lb = Load(s.server->port(), 64, seconds, nullptr, bin_body);
      const Batcher::Stats b1 = s.model->batcher_stats();
      c64bin.push_back(lb.rows_per_s);
      cpu_bin.push_back(lb.cpu_s_per_request);
      mean_batch.push_back(static_cast<double>(b1.rows - b0.rows) / static_cast<double>(std::max<uint64_t>(1, b1.batches - b0.batches)));
      inline_share.push_back(static_cast<double>(b1.inline_batches - b0.inline_batches) /
                             static_cast<double>(std::max<uint64_t>(1, b1.batches - b0.batches)));
      http_floor.push_back(HttpFloorSeconds(s.server->port(), 2000));
      p50bin.push_back(Load(s.server->port(), 1, seconds, nullptr, bin_body).p50_s);
      rows16.push_back(Load(s.server->port(), 16, seconds, nullptr, bin16_body).rows_per_s);
      s.server->Stop();
      // Stages without HTTP, one request at a time.
      const ModelMetadata md = (*fp32)->Metadata("bench");
      auto stages = [&](const RequestBody& b, std::vector<double>& infer, std::vector<double>& decode) {
        http::HttpRequest req;
        req.method = "POST";
        req.body = b.body;
        std::optional<uint64_t> hl;
        if (b.header_length > 0) {
          hl = b.header_length;
          req.headers["inference-header-content-length"] = std::to_string(b.header_length);
        }
        std::vector<double> t, d;
        for (int i = 0; i < 2000; ++i) {
          auto t0 = std::chrono::steady_clock::now();
          auto res = s.model->Infer(req);
          t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
          if (res.status != 200) std::abort();
          t0 = std::chrono::steady_clock::now();
          auto dec = DecodeInferRequest(b.body, md, CodecLimits{}, hl);
          d.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
          if (!dec.ok()) std::abort();
        }
        infer.push_back(Median(t));
        decode.push_back(Median(d));
      };
      stages(json_body, infer1, decode1);
      stages(bin_body, infer1bin, decodebin);
    }
    {
      Served s = Serve(*fp32, 1);
      c64b1.push_back(Load(s.server->port(), 64, seconds, nullptr, json_body).rows_per_s);
      s.server->Stop();
    }
  }
  Line("throughput_c64_vs_raw", Median(c64) / Median(raw64), "x", c64, raw64);
  Line("throughput_c64_vs_raw_binary", Median(c64bin) / Median(raw64), "x", c64bin, raw64);
  Line("batching_vs_batch1", Median(c64) / Median(c64b1), "x", c64, c64b1);
  Line("p50_c1_minus_forward_us", (Median(p50) - Median(fwd1)) * 1e6, "us", p50, fwd1, 1e6);
  Line("p50_c1_minus_forward_us_binary", (Median(p50bin) - Median(fwd1)) * 1e6, "us", p50bin, fwd1, 1e6);
  Line("p50_c1_stages_us", (Median(infer1) - Median(fwd1)) * 1e6, "us", infer1, decode1, 1e6,
       ",\"gantry_is\":\"DeployedModel::Infer in-process\",\"baseline_is\":\"DecodeInferRequest alone\","
       "\"value_is\":\"Infer minus the raw batch-1 forward\"");
  Line("p50_c1_stages_us_binary", (Median(infer1bin) - Median(fwd1)) * 1e6, "us", infer1bin, decodebin, 1e6,
       ",\"gantry_is\":\"DeployedModel::Infer in-process\",\"baseline_is\":\"DecodeInferRequest alone\","
       "\"value_is\":\"Infer minus the raw batch-1 forward\"");
  Line("throughput_16rows_c16_binary_vs_raw", Median(rows16) / Median(raw64), "x", rows16, raw64, 1,
       ",\"not_goal_row\":\"16 rows per request, 16 clients\"");
  Line("http_floor_c1_us", Median(http_floor) * 1e6, "us", http_floor, fwd1, 1e6,
       ",\"gantry_is\":\"p50 GET /v2/health/live, one keep-alive client\",\"baseline_is\":\"raw batch-1 forward\"");
  Line("mean_batch_rows_c64_binary", Median(mean_batch), "rows", mean_batch, inline_share, 1,
       ",\"baseline_is\":\"share of batches run inline (fast path)\"");
  Line("cpu_us_per_request_c64", Median(cpu_bin) * 1e6, "us", cpu_bin, cpu_json, 1e6,
       ",\"gantry_is\":\"binary\",\"baseline_is\":\"JSON\",\"value_is\":\"binary, process CPU per answered request\"");

  // Hot reload under load: 10 swaps spread over the window vs none.
  {
    std::vector<double> steady, moving;
    uint64_t failed = 0, swaps = 0;
    std::vector<LoadedVersion> versions;
    for (int64_t i = 0; i < 10; ++i) versions.push_back(MakeVersion(false, 2 + i));
    for (int r = 0; r < rounds; ++r) {
      Served s = Serve(*fp32, 64);
      auto moves = [&] {
        for (const auto& v : versions) {
          std::this_thread::sleep_for(std::chrono::duration<double>(seconds / 11));
          auto next = TorchServable::Create(v, false);
          if (!next.ok()) std::abort();
          s.model->Install(*next, (*next)->Metadata("bench"));
        }
      };
      const bool moves_first = r % 2 == 1;
      if (moves_first) {
        auto m = Load(s.server->port(), 64, seconds, moves);
        moving.push_back(m.p99_s);
        failed += m.failed;
      }
      auto st = Load(s.server->port(), 64, seconds);
      steady.push_back(st.p99_s);
      failed += st.failed;
      if (!moves_first) {
        auto m = Load(s.server->port(), 64, seconds, moves);
        moving.push_back(m.p99_s);
        failed += m.failed;
      }
      swaps += s.model->swaps() - 1;  // the first Install is not a swap
      s.server->Stop();
    }
    const std::string extra = ",\"latency_unit\":\"us\",\"failed_requests\":" + std::to_string(failed) +
                              ",\"swaps\":" + std::to_string(swaps);
    Line("p99_alias_moves_vs_steady", Median(moving) / Median(steady), "x", moving, steady, 1e6, extra.c_str());
  }
  auto engine = SelectQuantizedEngine();
  if (engine.ok()) {
    auto i8 = TorchServable::Create(MakeVersion(true), true);
    if (i8.ok()) {
      std::vector<double> a, b;
      for (int r = 0; r < rounds; ++r) {
        a.push_back(ForwardSeconds(**i8, 64, 300));
        b.push_back(ForwardSeconds(**fp32, 64, 300));
      }
      Line("int8_vs_fp32_b64", Median(a) / Median(b), "x", a, b, 1e6, ",\"latency_unit\":\"us\"");
    } else {
      std::fprintf(stderr, "int8: %s\n", i8.status().ToString().c_str());
    }
    // Accuracy: the same trained weights, fp32 and int8, on the test set.
    bool trained = false;
    LoadedVersion tv = MakeVersion(false, 100, /*train=*/true, &trained);
    auto images = data::ReadIdx(std::string(kFashion) + "t10k-images-idx3-ubyte.gz");
    auto labels = data::ReadIdx(std::string(kFashion) + "t10k-labels-idx1-ubyte.gz");
    if (trained && images.ok() && labels.ok()) {
      const int64_t n = static_cast<int64_t>(labels->data.size());
      torch::Tensor raw = torch::from_blob(images->data.data(), {n, 1, 28, 28}, torch::kUInt8).to(torch::kFloat32);
      torch::Tensor y = torch::from_blob(labels->data.data(), {n}, torch::kUInt8).to(torch::kInt64);
      auto f = TorchServable::Create(tv, false);
      LoadedVersion tq = tv;
      tq.quantization = kQuantizationDynamicInt8;
      auto q = TorchServable::Create(tq, true);
      if (f.ok() && q.ok()) {
        torch::Tensor pf = (*f)->Logits(raw)->argmax(1);
        torch::Tensor pq = (*q)->Logits(raw)->argmax(1);
        const double af = pf.eq(y).to(torch::kFloat64).mean().item<double>();
        const double aq = pq.eq(y).to(torch::kFloat64).mean().item<double>();
        const double agree = pf.eq(pq).to(torch::kFloat64).mean().item<double>();
        std::printf("{\"bench\":\"serve\",\"metric\":\"int8_accuracy_diff\",\"value\":%.4g,\"unit\":\"accuracy\","
                    "\"n\":%lld,\"gantry\":%.6g,\"baseline\":%.6g,\"same_class\":%.6g}\n",
                    aq - af, static_cast<long long>(n), aq, af, agree);
        std::fflush(stdout);
      }
    } else {
      std::fprintf(stderr, "int8 accuracy: no Fashion-MNIST in %s (apt install dataset-fashion-mnist)\n", kFashion);
    }
  }
  return 0;
}
