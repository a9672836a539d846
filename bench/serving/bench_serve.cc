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
//   int8_vs_fp32_b64        forward latency at batch 64, int8 / fp32
//
//   bench_serve [--seconds S] [--rounds R]
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/http/server.h"
#include "serving/deployed_model.h"
#include "serving/int8_linear.h"
#include "serving/serve_routes.h"
#include "serving/torch_servable.h"

namespace {

using namespace gantry;
using namespace gantry::serving;
using Clock = std::chrono::steady_clock;

LoadedVersion MakeVersion(bool int8) {
  torch::manual_seed(1);
  ModelSpec spec;
  spec.builtin = "mlp";
  spec.hidden = {256, 128};
  auto m = model::CreateModel(spec, {1, 28, 28}, 10);
  LoadedVersion v;
  v.model = "bench";
  v.version = 1;
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

struct LoadResult {
  double rows_per_s = 0;
  double p50_s = 0;
  uint64_t failed = 0;
};

// `concurrency` keep-alive clients posting one-row requests for `seconds`.
LoadResult Load(uint16_t port, int concurrency, double seconds) {
  namespace bhttp = boost::beast::http;
  torch::Tensor x = (torch::rand({784}) * 255).round();
  std::vector<float> data(x.data_ptr<float>(), x.data_ptr<float>() + 784);
  const std::string body =
      json{{"inputs", {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {1, 784}}, {"data", data}}}}}.dump();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0}, failed{0};
  std::vector<std::vector<double>> lat(concurrency);
  std::vector<std::thread> threads;
  for (int c = 0; c < concurrency; ++c) {
    threads.emplace_back([&, c] {
      boost::asio::io_context ioc;
      boost::asio::ip::tcp::socket sock(ioc);
      sock.connect({boost::asio::ip::make_address("127.0.0.1"), port});
      boost::beast::flat_buffer buf;
      while (!stop.load()) {
        bhttp::request<bhttp::string_body> req(bhttp::verb::post, "/v2/models/bench/infer", 11);
        req.set(bhttp::field::host, "127.0.0.1");
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
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& t : threads) t.join();
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  return {static_cast<double>(done.load()) / elapsed, Median(all), failed.load()};
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
  out.model = std::make_unique<DeployedModel>(o, ServingMetricsOptions{});
  out.model->Install(s, s->Metadata("bench"));
  auto router = MakeServeRouter({out.model.get()});
  http::HttpServerOptions ho;
  ho.port = 0;
  ho.threads = 72;
  ho.max_body_bytes = 8 << 20;
  ho.max_connections = 256;
  ho.server_name = "gantry-serve";
  out.server = std::make_unique<http::HttpServer>(ho, *router);
  if (!out.server->Start().ok()) std::abort();
  return out;
}

void Line(const char* metric, double value, const char* unit, int n, double gantry, double baseline) {
  std::printf("{\"bench\":\"serve\",\"metric\":\"%s\",\"value\":%.4g,\"unit\":\"%s\",\"n\":%d,\"gantry\":%.6g,"
              "\"baseline\":%.6g}\n",
              metric, value, unit, n, gantry, baseline);
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
  std::vector<double> raw64, c64, c64b1, p50, fwd1;
  for (int r = 0; r < rounds; ++r) {
    raw64.push_back(64.0 / ForwardSeconds(**fp32, 64, 200));
    fwd1.push_back(ForwardSeconds(**fp32, 1, 500));
    {
      Served s = Serve(*fp32, 64);
      c64.push_back(Load(s.server->port(), 64, seconds).rows_per_s);
      p50.push_back(Load(s.server->port(), 1, seconds).p50_s);
      s.server->Stop();
    }
    {
      Served s = Serve(*fp32, 1);
      c64b1.push_back(Load(s.server->port(), 64, seconds).rows_per_s);
      s.server->Stop();
    }
  }
  Line("throughput_c64_vs_raw", Median(c64) / Median(raw64), "x", rounds, Median(c64), Median(raw64));
  Line("batching_vs_batch1", Median(c64) / Median(c64b1), "x", rounds, Median(c64), Median(c64b1));
  Line("p50_c1_minus_forward_us", (Median(p50) - Median(fwd1)) * 1e6, "us", rounds, Median(p50) * 1e6,
       Median(fwd1) * 1e6);
  auto engine = SelectQuantizedEngine();
  if (engine.ok()) {
    auto i8 = TorchServable::Create(MakeVersion(true), true);
    if (i8.ok()) {
      std::vector<double> a, b;
      for (int r = 0; r < rounds; ++r) {
        a.push_back(ForwardSeconds(**i8, 64, 300));
        b.push_back(ForwardSeconds(**fp32, 64, 300));
      }
      Line("int8_vs_fp32_b64", Median(a) / Median(b), "x", rounds, Median(a) * 1e6, Median(b) * 1e6);
    } else {
      std::fprintf(stderr, "int8: %s\n", i8.status().ToString().c_str());
    }
  }
  return 0;
}
