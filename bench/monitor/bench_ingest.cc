// bench_ingest: the monitor's ingest with persistence, and the page data of a
// 100,000-point history (docs/performance.md, "Monitor ingest and page
// data"; issue 10, item 7). Runs the real `gantry-monitor` binary (found next
// to this one in ../bin, or $GANTRY_BUILD_DIR/bin) on a fresh data folder in
// $TMPDIR, in this process's group and priority, and in one run, alternating:
//
//   ingest_points_per_s_vs_zmq
//       N metrics points (a rank-0 training window: 8 values, sequenced as
//       the worker sends them) from one DEALER to the monitor's ingest
//       socket, timed from the first send until the monitor acknowledges
//       seq N (every point parsed, published on the feed, seen by the read
//       model and the alert engine, and committed to SQLite), vs the same
//       frames over a bare libzmq PUSH -> PULL (tcp loopback, a thread of
//       this process receiving them, no storage): the transport's limit.
//   page_data_vs_full / page_data_vs_store_read
//       GET /api/jobs/{id}/metrics?max_points=2000 (what the dashboard asks)
//       on a job of N points (one round's job), vs the same request with
//       max_points=N (every point, no downsampling), and vs reading the N
//       raw points from the same monitor.db in this process
//       (MetricsStore::Points, the floor of any answer).
//
//   bench_ingest [--rounds R] [--points N] [--monitor PATH]
#include <unistd.h>

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
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/data_dir.h"
#include "common/ingest_wire.h"
#include "common/process.h"
#include "monitor/metrics_store.h"

namespace {

using namespace gantry;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Stats {
  std::vector<double> v;
  double Median() const {
    auto s = v;
    std::sort(s.begin(), s.end());
    return s.empty() ? 0 : s[s.size() / 2];
  }
  double Min() const { return v.empty() ? 0 : *std::min_element(v.begin(), v.end()); }
  double Max() const { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }
  json Json(const char* unit) const { return {{"median", Median()}, {"min", Min()}, {"max", Max()}, {"unit", unit}}; }
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "bench_ingest: %s\n", what.c_str());
  std::exit(1);
}

void Figure(const char* metric, double value, const char* unit, size_t n, const json& gantry, const json& baseline,
            const json& extra = json::object()) {
  json j = {{"bench", "ingest"}, {"metric", metric}, {"value", value}, {"unit", unit},
            {"n", n},            {"gantry", gantry}, {"baseline", baseline}};
  for (const auto& [k, v] : extra.items()) j[k] = v;
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

// The frames one rank-0 training window would send: 8 values, sequenced.
std::vector<std::string> Frames(const std::string& job, int64_t n) {
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 1; i <= n; ++i) {
    MetricsMessage m;
    m.job_id = job;
    m.step = i;
    m.total_steps = n;
    m.time = 1.8e9 + static_cast<double>(i) * 0.01;
    const double x = static_cast<double>(i);
    m.values = {{"step_time", 1e-3 + 1e-7 * (i % 97)}, {"data_time", 1e-4},   {"compute_time", 8e-4},
                {"comm_time", 1e-4},                    {"loss", 2.3 / (1 + x / 1000)}, {"accuracy", x / (x + 500)},
                {"samples_per_sec", 50000 + i % 1000},  {"lr", 0.05}};
    m.seq = i;
    out.push_back(EncodeMetricsMessage(m));
  }
  return out;
}

// Sends `frames` to the monitor's ingest socket from one DEALER and waits
// for the ack of the last seq; seconds from the first send.
double IngestToMonitor(zmq::context_t& ctx, const std::string& endpoint, const std::vector<std::string>& frames) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.connect(endpoint);
  const int64_t last = static_cast<int64_t>(frames.size());
  auto t0 = Clock::now();
  int64_t acked = 0;
  auto read_acks = [&](zmq::recv_flags flags) {
    zmq::message_t m;
    while (s.recv(m, flags)) {
      auto ack = DecodeIngestAck(m.to_string_view());
      if (ack.ok()) acked = std::max(acked, ack->seq);
      flags = zmq::recv_flags::dontwait;
    }
  };
  for (const auto& f : frames) {
    s.send(zmq::buffer(f), zmq::send_flags::none);
    read_acks(zmq::recv_flags::dontwait);
  }
  while (acked < last) {
    s.set(zmq::sockopt::rcvtimeo, 30000);
    zmq::message_t m;
    if (!s.recv(m, zmq::recv_flags::none)) Die("no ingest_ack within 30 s (acked " + std::to_string(acked) + ")");
    auto ack = DecodeIngestAck(m.to_string_view());
    if (ack.ok()) acked = std::max(acked, ack->seq);
  }
  return Since(t0);
}

// The same frames over bare PUSH -> PULL (tcp loopback) to a receiving
// thread; seconds from the first send until the receiver has them all.
double IngestToZmq(zmq::context_t& ctx, const std::vector<std::string>& frames) {
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  pull.set(zmq::sockopt::linger, 0);
  pull.bind("tcp://127.0.0.1:*");
  const std::string endpoint = pull.get(zmq::sockopt::last_endpoint);
  std::atomic<bool> ready{false};
  Clock::time_point done;
  std::thread receiver([&] {
    ready = true;
    zmq::message_t m;
    size_t bytes = 0;
    for (size_t i = 0; i < frames.size(); ++i) {
      if (!pull.recv(m, zmq::recv_flags::none)) Die("pull recv");
      bytes += m.size();
    }
    done = Clock::now();
    if (bytes == 0) Die("no bytes");
  });
  while (!ready) std::this_thread::yield();
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, 0);
  push.connect(endpoint);
  auto t0 = Clock::now();
  for (const auto& f : frames) push.send(zmq::buffer(f), zmq::send_flags::none);
  receiver.join();
  return std::chrono::duration<double>(done - t0).count();
}

// GET `target` on 127.0.0.1:port (one keep-alive connection per call);
// seconds until the whole body arrived, and its size.
std::pair<double, size_t> Get(uint16_t port, const std::string& target) {
  namespace bhttp = boost::beast::http;
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket sock(ioc);
  sock.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  bhttp::request<bhttp::empty_body> req(bhttp::verb::get, target, 11);
  req.set(bhttp::field::host, "127.0.0.1");
  auto t0 = Clock::now();
  bhttp::write(sock, req);
  boost::beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(1ULL << 32);
  bhttp::read(sock, buf, parser);
  const double secs = Since(t0);
  if (parser.get().result_int() != 200) Die(target + " answered " + std::to_string(parser.get().result_int()));
  return {secs, parser.get().body().size()};
}

std::string MonitorPath(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* b = std::getenv("GANTRY_BUILD_DIR"); b && *b) return std::string(b) + "/bin/gantry-monitor";
  return SelfDir() + "/../bin/gantry-monitor";
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5;
  int64_t points = 100000;
  std::string monitor_flag;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--rounds")) rounds = std::max(1, std::atoi(argv[i + 1]));
    if (!std::strcmp(argv[i], "--points")) points = std::max<int64_t>(1, std::atoll(argv[i + 1]));
    if (!std::strcmp(argv[i], "--monitor")) monitor_flag = argv[i + 1];
  }
  const std::string binary = MonitorPath(monitor_flag);
  if (::access(binary.c_str(), X_OK) != 0) Die("no gantry-monitor at " + binary + " (build it, or --monitor PATH)");

  const char* tmp = std::getenv("TMPDIR");
  std::string root = std::string(tmp && *tmp ? tmp : "/tmp") + "/bench_ingest.XXXXXX";
  if (::mkdtemp(root.data()) == nullptr) Die("mkdtemp " + root);
  DataDir dir(root);

  SpawnOptions so;
  so.argv = {binary,         "--data-dir", root, "--ingest", "tcp://127.0.0.1:0", "--feed", "tcp://127.0.0.1:0",
             "--api",        "tcp://127.0.0.1:0", "--http", "127.0.0.1:0", "--log-level", "warn"};
  so.stdout_path = root + "/monitor.out";
  so.new_session = false;  // same autogroup and nice as this process
  auto child = ChildProcess::Spawn(so);
  if (!child.ok()) Die(child.status().ToString());
  ServiceInfo info;
  for (int i = 0;; ++i) {
    auto r = dir.ReadServiceInfo(kMonitor);
    if (r.ok() && r->endpoints.count("ingest") && r->endpoints.count("http")) {
      info = *r;
      break;
    }
    if (i > 300 || child->Poll()) Die("gantry-monitor did not start; see " + so.stdout_path);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string http = info.endpoints.at("http");
  const uint16_t http_port = static_cast<uint16_t>(std::stoi(http.substr(http.rfind(':') + 1)));

  zmq::context_t ctx;
  Stats monitor_s, zmq_s;
  std::string page_job;
  for (int r = 0; r <= rounds; ++r) {  // round 0 warms up
    const std::string job = "bench-ingest-" + std::to_string(r);
    const auto frames = Frames(job, points);
    double m = 0, z = 0;
    if (r % 2 == 0) {
      m = IngestToMonitor(ctx, info.endpoints.at("ingest"), frames);
      z = IngestToZmq(ctx, frames);
    } else {
      z = IngestToZmq(ctx, frames);
      m = IngestToMonitor(ctx, info.endpoints.at("ingest"), frames);
    }
    if (r == 0) continue;
    monitor_s.v.push_back(static_cast<double>(points) / m);
    zmq_s.v.push_back(static_cast<double>(points) / z);
    page_job = job;
  }
  size_t frame_bytes = Frames("bench-ingest-1", 1).front().size();
  Figure("ingest_points_per_s_vs_zmq", monitor_s.Median() / zmq_s.Median(), "x", monitor_s.v.size(),
         monitor_s.Json("points/s"), zmq_s.Json("points/s"),
         {{"goal", ">= 0.5"},
          {"points_per_round", points},
          {"frame_bytes", frame_bytes},
          {"note", "DEALER -> gantry-monitor until the ack of the last seq (committed) vs bare PUSH/PULL"}});

  // Page data of one round's job (points points, 8 series + 1 rank series).
  const std::string base = "/api/jobs/" + page_job + "/metrics?max_points=";
  Stats page, full, store_read;
  size_t page_bytes = 0, full_bytes = 0;
  auto store = monitor::MetricsStore::Open(root + "/monitor.db");
  if (!store.ok()) Die(store.status().ToString());
  (void)Get(http_port, base + "2000");  // warm the page cache and the read path
  for (int r = 0; r < std::max(rounds, 5); ++r) {
    auto [ps, pb] = Get(http_port, base + "2000");
    page.v.push_back(ps);
    page_bytes = pb;
    auto [fs, fb] = Get(http_port, base + std::to_string(points));
    full.v.push_back(fs);
    full_bytes = fb;
    auto t0 = Clock::now();
    auto p = store->Points(page_job, -1, points);
    store_read.v.push_back(Since(t0));
    if (!p.ok() || static_cast<int64_t>(p->size()) != points) Die("store read: wrong point count");
  }
  Figure("page_data_vs_full", page.Median() / full.Median(), "x", page.v.size(), page.Json("s"), full.Json("s"),
         {{"history_points", points},
          {"page_bytes", page_bytes},
          {"full_bytes", full_bytes},
          {"note", "GET /api/jobs/{id}/metrics?max_points=2000 vs max_points=N (no downsampling)"}});
  Figure("page_data_vs_store_read", page.Median() / store_read.Median(), "x", page.v.size(), page.Json("s"),
         store_read.Json("s"),
         {{"history_points", points},
          {"note", "the same page vs MetricsStore::Points of the N raw points from monitor.db in this process"}});

  child->Terminate(std::chrono::seconds(10));
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  return 0;
}
