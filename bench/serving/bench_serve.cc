// gantry-serve's throughput and latency against a raw LibTorch forward loop
// (docs/performance.md, "Serving"). In one process: an mlp [256, 128] for
// 1x28x28 inputs with seeded random weights, served through the real stack
// (codec, batcher, slot, HTTP on loopback), loaded by wrk (Debian's package,
// a separate process: one thread, keep-alive connections). Prints one JSON
// line per figure:
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
//                           each (binary), 16 connections, rows/s vs the same
//                           raw forward loop at batch 64
//   http_floor_c1_us        p50 of GET /v2/health/live on one keep-alive
//                           connection: the HTTP round trip alone
//   mean_batch_rows_c64_binary  rows per batch during the binary c64 load
//                           (baseline field: the share of batches run on
//                           the HTTP loops rather than the batcher's worker)
//   cpu_us_per_request_c64  CPU time of the server (this process) and wrk
//                           per answered request at concurrency 64, binary
//                           and JSON; server_cpu_us_per_request_c64_binary
//                           the server's share alone
//   server_cpu_us_per_get_c64  the server's CPU per GET /v2/health/live at
//                           concurrency 64: HTTP and TCP alone, the floor
//                           under every infer request
//   batching_vs_batch1_binary  the batching row with binary tensors
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
// BENCH_WORKER_ONLY=1 runs every batch on the batcher's worker thread
// (DeploymentOptions::run_on_http_loop off);
// BENCH_DEFAULT_MALLOC=1 keeps glibc's malloc defaults (see main);
// BENCH_SERVE_FOR=S only serves the bench deployment (max_batch 64, or
// BENCH_MAX_BATCH) for S seconds (wrk or
// perf by hand).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
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
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "common/glibc_tunables.h"
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

// The load from wrk (Debian's package), a separate process: one thread,
// `concurrency` keep-alive connections posting `request` (GET when null) to
// `target` for `seconds` (whole seconds, at least 1); `during` (if any) runs on
// its own thread meanwhile. Latency quantiles are wrk's; CPU per request adds
// this process's (the server's) and wrk's.
struct WrkResult {
  LoadResult load;
  double server_cpu_s_per_request = 0;
  bool ok = false;
};

WrkResult WrkLoad(uint16_t port, int concurrency, double seconds, const RequestBody* request,
                  const std::string& target = "/v2/models/bench/infer", std::function<void()> during = nullptr) {
  WrkResult out;
  char dir[] = "/tmp/bench_serve_wrk.XXXXXX";
  if (mkdtemp(dir) == nullptr) return out;
  const std::string body_path = std::string(dir) + "/body", script_path = std::string(dir) + "/load.lua";
  {
    std::FILE* f = std::fopen(script_path.c_str(), "w");
    std::string lua;
    if (request != nullptr) {
      std::FILE* b = std::fopen(body_path.c_str(), "wb");
      std::fwrite(request->body.data(), 1, request->body.size(), b);
      std::fclose(b);
      lua += "local f = io.open(\"" + body_path + "\", \"rb\")\nwrk.method = \"POST\"\nwrk.body = f:read(\"*a\")\nf:close()\n";
      if (request->header_length > 0) {
        lua += "wrk.headers[\"Inference-Header-Content-Length\"] = \"" + std::to_string(request->header_length) +
               "\"\nwrk.headers[\"Content-Type\"] = \"application/octet-stream\"\n";
      } else {
        lua += "wrk.headers[\"Content-Type\"] = \"application/json\"\n";
      }
    }
    lua +=
        "done = function(s, l, r)\n"
        "  io.write(string.format('WRK %d %d %d %d %d %d %d %d %d\\n', s.requests, s.duration, s.errors.status,\n"
        "    s.errors.connect, s.errors.read, s.errors.write, s.errors.timeout, l:percentile(50), l:percentile(99)))\n"
        "end\n";
    std::fputs(lua.c_str(), f);
    std::fclose(f);
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + target;
  const std::string c = std::to_string(concurrency);
  const std::string d = std::to_string(std::max(1L, std::lround(seconds))) + "s";
  int pipefd[2];
  if (pipe(pipefd) != 0) return out;
  const double cpu0 = ProcessCpuSeconds();
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 1);
    close(pipefd[0]);
    close(pipefd[1]);
    execlp("wrk", "wrk", "-t1", "-c", c.c_str(), "-d", d.c_str(), "--timeout", "10s", "-s", script_path.c_str(),
           url.c_str(), static_cast<char*>(nullptr));
    std::fprintf(stderr, "bench_serve: cannot run wrk (apt-get install wrk): %s\n", std::strerror(errno));
    _exit(127);
  }
  close(pipefd[1]);
  std::thread side;
  if (during) side = std::thread(during);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(pipefd[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  rusage child{};
  wait4(pid, &status, 0, &child);
  if (side.joinable()) side.join();
  const double server_cpu = ProcessCpuSeconds() - cpu0;
  const double wrk_cpu = static_cast<double>(child.ru_utime.tv_sec + child.ru_stime.tv_sec) +
                         static_cast<double>(child.ru_utime.tv_usec + child.ru_stime.tv_usec) * 1e-6;
  std::filesystem::remove_all(dir);
  const size_t at = text.find("WRK ");
  unsigned long long requests = 0, duration_us = 0, non2xx = 0, e_connect = 0, e_read = 0, e_write = 0, e_timeout = 0;
  double p50 = 0, p99 = 0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || at == std::string::npos ||
      std::sscanf(text.c_str() + at, "WRK %llu %llu %llu %llu %llu %llu %llu %lf %lf", &requests, &duration_us, &non2xx,
                  &e_connect, &e_read, &e_write, &e_timeout, &p50, &p99) != 9 ||
      duration_us == 0) {
    std::fprintf(stderr, "bench_serve: wrk failed:\n%s\n", text.c_str());
    return out;
  }
  out.ok = true;
  const double answered = static_cast<double>(requests - non2xx);
  out.load.rows_per_s = answered * (request ? request->rows : 1) / (static_cast<double>(duration_us) * 1e-6);
  out.load.p50_s = p50 * 1e-6;
  out.load.p99_s = p99 * 1e-6;
  out.load.failed = non2xx + e_connect + e_read + e_write + e_timeout;
  out.load.cpu_s_per_request = answered > 0 ? (server_cpu + wrk_cpu) / answered : 0;
  out.server_cpu_s_per_request = answered > 0 ? server_cpu / answered : 0;
  return out;
}

// WrkLoad, exiting when wrk could not run (the figures would be wrong).
LoadResult Wrk(uint16_t port, int concurrency, double seconds, const RequestBody* request,
               const std::string& target = "/v2/models/bench/infer", std::function<void()> during = nullptr,
               double* server_cpu_s_per_request = nullptr) {
  WrkResult r = WrkLoad(port, concurrency, seconds, request, target, std::move(during));
  if (!r.ok) std::exit(1);
  if (server_cpu_s_per_request) *server_cpu_s_per_request = r.server_cpu_s_per_request;
  return r.load;
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
  o.run_on_http_loop = std::getenv("BENCH_WORKER_ONLY") == nullptr;
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
  // Measure what gantry-serve runs with: the coordinator starts it with
  // kServeMallocCache in GLIBC_TUNABLES, which glibc reads only at process
  // start, so the bench re-executes itself with it (BENCH_DEFAULT_MALLOC=1:
  // glibc's defaults, for comparison).
  if (std::getenv("BENCH_DEFAULT_MALLOC") == nullptr) {
    const char* current = std::getenv("GLIBC_TUNABLES");
    const std::string want = WithGlibcTunable(current, kServeMallocCache);
    if (current == nullptr || want != current) {
      ::setenv("GLIBC_TUNABLES", want.c_str(), 1);
      ::execv("/proc/self/exe", argv);
      std::perror("bench_serve: re-exec with GLIBC_TUNABLES");
      return 1;
    }
  }
  std::fprintf(stderr, "# GLIBC_TUNABLES=%s\n", std::getenv("GLIBC_TUNABLES") ? std::getenv("GLIBC_TUNABLES") : "");
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
  if (const char* serve_for = std::getenv("BENCH_SERVE_FOR")) {
    // Exploration: serve the bench deployment for that many seconds, for
    // wrk or perf run by hand; the port and request bodies are printed.
    const char* mb = std::getenv("BENCH_MAX_BATCH");
    Served s = Serve(*fp32, mb ? static_cast<size_t>(std::atoi(mb)) : 64);
    const RequestBody bin = MakeBody(true);
    std::FILE* f = std::fopen("/tmp/bench_serve_body.bin", "wb");
    std::fwrite(bin.body.data(), 1, bin.body.size(), f);
    std::fclose(f);
    std::printf("port %u, binary body /tmp/bench_serve_body.bin, header length %zu\n", s.server->port(), bin.header_length);
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::duration<double>(std::atof(serve_for)));
    const Batcher::Stats st = s.model->batcher_stats();
    std::printf("batches %llu (on the HTTP loops %llu), rows %llu, rejected %llu\n",
                static_cast<unsigned long long>(st.batches), static_cast<unsigned long long>(st.loop_batches),
                static_cast<unsigned long long>(st.rows), static_cast<unsigned long long>(st.rejected));
    return 0;
  }
  std::vector<double> raw64, c64, c64b1, c64b1bin, p50, fwd1, infer1, decode1;
  std::vector<double> c64bin, p50bin, infer1bin, decodebin, rows16, cpu_json, cpu_bin, server_cpu_bin, mean_batch,
      loop_share, http_floor, http_cpu;
  const RequestBody json_body = MakeBody(false);
  const RequestBody bin_body = MakeBody(true);
  const RequestBody bin16_body = MakeBody(true, 16);
  for (int r = 0; r < rounds; ++r) {
    raw64.push_back(64.0 / ForwardSeconds(**fp32, 64, 200));
    fwd1.push_back(ForwardSeconds(**fp32, 1, 500));
    {
      Served s = Serve(*fp32, 64);
      const uint16_t port = s.server->port();
      LoadResult lj = Wrk(port, 64, seconds, &json_body);
      c64.push_back(lj.rows_per_s);
      cpu_json.push_back(lj.cpu_s_per_request);
      p50.push_back(Wrk(port, 1, seconds, &json_body).p50_s);
      const Batcher::Stats b0 = s.model->batcher_stats();
      double server_cpu = 0;
      LoadResult lb = Wrk(port, 64, seconds, &bin_body, "/v2/models/bench/infer", nullptr, &server_cpu);
      const Batcher::Stats b1 = s.model->batcher_stats();
      c64bin.push_back(lb.rows_per_s);
      cpu_bin.push_back(lb.cpu_s_per_request);
      server_cpu_bin.push_back(server_cpu);
      mean_batch.push_back(static_cast<double>(b1.rows - b0.rows) / static_cast<double>(std::max<uint64_t>(1, b1.batches - b0.batches)));
      loop_share.push_back(static_cast<double>(b1.loop_batches - b0.loop_batches) /
                           static_cast<double>(std::max<uint64_t>(1, b1.batches - b0.batches)));
      http_floor.push_back(Wrk(port, 1, seconds, nullptr, "/v2/health/live").p50_s);
      double get_cpu = 0;
      Wrk(port, 64, seconds, nullptr, "/v2/health/live", nullptr, &get_cpu);
      http_cpu.push_back(get_cpu);
      p50bin.push_back(Wrk(port, 1, seconds, &bin_body).p50_s);
      rows16.push_back(Wrk(port, 16, seconds, &bin16_body).rows_per_s);
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
      c64b1.push_back(Wrk(s.server->port(), 64, seconds, &json_body).rows_per_s);
      c64b1bin.push_back(Wrk(s.server->port(), 64, seconds, &bin_body).rows_per_s);
      s.server->Stop();
    }
  }
  Line("throughput_c64_vs_raw", Median(c64) / Median(raw64), "x", c64, raw64);
  Line("throughput_c64_vs_raw_binary", Median(c64bin) / Median(raw64), "x", c64bin, raw64);
  Line("batching_vs_batch1", Median(c64) / Median(c64b1), "x", c64, c64b1);
  Line("batching_vs_batch1_binary", Median(c64bin) / Median(c64b1bin), "x", c64bin, c64b1bin);
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
       ",\"gantry_is\":\"p50 GET /v2/health/live, wrk, one connection\",\"baseline_is\":\"raw batch-1 forward\"");
  Line("mean_batch_rows_c64_binary", Median(mean_batch), "rows", mean_batch, loop_share, 1,
       ",\"baseline_is\":\"share of batches run on the HTTP loops\"");
  Line("cpu_us_per_request_c64", Median(cpu_bin) * 1e6, "us", cpu_bin, cpu_json, 1e6,
       ",\"gantry_is\":\"binary\",\"baseline_is\":\"JSON\",\"value_is\":\"binary, server and wrk CPU per answered request\"");
  Line("server_cpu_us_per_request_c64_binary", Median(server_cpu_bin) * 1e6, "us", server_cpu_bin, cpu_bin, 1e6,
       ",\"gantry_is\":\"the server process alone\",\"baseline_is\":\"server and wrk\"");
  Line("server_cpu_us_per_get_c64", Median(http_cpu) * 1e6, "us", http_cpu, server_cpu_bin, 1e6,
       ",\"gantry_is\":\"server CPU per GET /v2/health/live\",\"baseline_is\":\"server CPU per binary infer\"");

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
      const uint16_t port = s.server->port();
      if (moves_first) {
        auto m = Wrk(port, 64, seconds, &json_body, "/v2/models/bench/infer", moves);
        moving.push_back(m.p99_s);
        failed += m.failed;
      }
      auto st = Wrk(port, 64, seconds, &json_body);
      steady.push_back(st.p99_s);
      failed += st.failed;
      if (!moves_first) {
        auto m = Wrk(port, 64, seconds, &json_body, "/v2/models/bench/infer", moves);
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
