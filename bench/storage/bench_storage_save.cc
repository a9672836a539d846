// bench_storage_save: how fast a ~100 MB state becomes a durable checkpoint
// version, against the disk's limit (the same bytes written to one file and
// fdatasync'ed) and against torch::save + fsync of the same tensors.
// Rounds alternate the order of the contenders; every round changes every
// tensor first, so nothing is deduplicated. Prints one JSON line per figure.
//
//   bench_storage_save [--rounds N] [--mb M]
// Scratch files go under $TMPDIR (default /tmp): point it at the disk you
// care about.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <thread>

#include "bench/storage/bench_common.h"
#include "common/clock.h"
#include "common/rpc.h"
#include "storage/registry.h"
#include "storage/storage_service.h"

#ifdef GANTRY_BENCH_WITH_TORCH
#include <torch/serialize/output-archive.h>
#include <torch/torch.h>
#endif

namespace gantry::storage::bench {
namespace {

void Check(const Status& s, const char* what) { bench::Check(s, "bench_storage_save", what); }

// The disk's limit: every tensor's bytes, back to back, into one new file,
// then fdatasync.
double RawWrite(const State& s, const std::string& path) {
  auto t0 = std::chrono::steady_clock::now();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Check(Status::Internal(std::strerror(errno)), "raw open");
  for (const auto& d : s.data) {
    size_t done = 0;
    while (done < d.size()) {
      ssize_t n = ::write(fd, d.data() + done, d.size() - done);
      if (n < 0) Check(Status::Internal(std::strerror(errno)), "raw write");
      done += static_cast<size_t>(n);
    }
  }
  if (::fdatasync(fd) != 0) Check(Status::Internal(std::strerror(errno)), "raw fdatasync");
  ::close(fd);
  double secs = Seconds(t0);
  ::unlink(path.c_str());
  return secs;
}

#ifdef GANTRY_BENCH_WITH_TORCH
double TorchSave(const State& s, const std::string& path) {
  auto t0 = std::chrono::steady_clock::now();
  torch::serialize::OutputArchive archive;
  for (size_t i = 0; i < s.data.size(); ++i) {
    archive.write(s.names[i], torch::from_blob(const_cast<uint8_t*>(s.data[i].data()), s.shapes[i], torch::kFloat32));
  }
  archive.save_to(path);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) Check(Status::Internal(std::strerror(errno)), "torch fsync");
  ::close(fd);
  double secs = Seconds(t0);
  ::unlink(path.c_str());
  return secs;
}
#endif

int Main(int argc, char** argv) {
  const auto [rounds, mb] = ParseArgs(argc, argv);
  spdlog::set_level(spdlog::level::warn);
#ifdef GANTRY_BENCH_WITH_TORCH
  torch::set_num_threads(1);
#endif
  ScratchDir dir;
  State state = State::Make(mb, 1 << 20, 1);
  const double mib = static_cast<double>(state.Bytes()) / (1 << 20);
  SystemClock clock;
  auto opened = Registry::Open(dir.path() + "/data", clock);
  Check(opened.status(), "open registry");
  Registry& reg = *opened;

  Stats gantry, raw, torch_save;
  uint64_t touch = 0;
  auto save_gantry = [&] {
    state.Touch(++touch);
    Checkpoint c = state.View("bench", static_cast<int64_t>(touch));
    auto t0 = std::chrono::steady_clock::now();
    auto r = reg.Save(c);
    gantry.samples.push_back(Seconds(t0));
    Check(r.status(), "save");
    // Keep the disk from filling: the version is not needed any more.
    Check(reg.Delete("bench", "latest", true).status(), "delete");
  };
  auto save_raw = [&] {
    state.Touch(++touch);
    raw.samples.push_back(RawWrite(state, dir.path() + "/raw.bin"));
  };
  std::vector<std::function<void()>> contenders = {save_gantry, save_raw};
#ifdef GANTRY_BENCH_WITH_TORCH
  contenders.push_back([&] {
    state.Touch(++touch);
    torch_save.samples.push_back(TorchSave(state, dir.path() + "/state.pt"));
  });
#endif
  // Warm-up (page cache, allocator, file system) outside the figures.
  for (auto& c : contenders) c();
  gantry.samples.clear();
  raw.samples.clear();
  torch_save.samples.clear();
  for (int r = 0; r < rounds; ++r) {
    for (size_t k = 0; k < contenders.size(); ++k) contenders[(k + static_cast<size_t>(r)) % contenders.size()]();
  }

  auto mbps = [&](const Stats& s) {
    return json{{"median_s", s.Median()}, {"min_s", s.Min()}, {"max_s", s.Max()}, {"mib_per_s", mib / s.Median()}};
  };
  const json state_info = {{"state_mib", mib}, {"tensors", state.data.size()}};
  PrintFigure("checkpoint_save", "throughput_ratio_vs_raw", raw.Median() / gantry.Median(), "x",
              gantry.samples.size(), mbps(gantry), mbps(raw), {{"goal", ">= 0.8"}, {"state", state_info}});
#ifdef GANTRY_BENCH_WITH_TORCH
  PrintFigure("checkpoint_save", "speedup_vs_torch_save", torch_save.Median() / gantry.Median(), "x",
              gantry.samples.size(), mbps(gantry), mbps(torch_save), {{"goal", "> 1"}, {"state", state_info}});
#endif

  // The same save through the wire protocol, as a worker sends it: the
  // client's MessagePack encoding, ZeroMQ over loopback, the service's
  // validation and decoding, then the registry.
  zmq::context_t ctx;
  RpcServerOptions options;
  options.max_message_bytes = int64_t{1} << 30;
  RpcServer server(ctx, options);
  RegisterStorageHandlers(server, reg);
  Check(server.Bind(), "bind");
  std::thread serve([&] { (void)server.Serve(); });
  Stats rpc, rpc_raw;
  {
    RpcClient client(ctx, server.endpoint(), std::chrono::seconds(120));
    for (int r = 0; r < rounds + 1; ++r) {
      state.Touch(++touch);
      json body = state.Body("bench-rpc", r);
      auto t0 = std::chrono::steady_clock::now();
      auto reply = client.Call("save_checkpoint", body);
      double secs = Seconds(t0);
      Check(reply.status(), "rpc save");
      Check(client.Call("delete_version", {{"model", "bench-rpc"}, {"ref", "latest"}, {"force", true}}).status(),
            "rpc delete");
      state.Touch(++touch);
      double raw_secs = RawWrite(state, dir.path() + "/raw.bin");
      if (r == 0) continue;  // warm-up
      rpc.samples.push_back(secs);
      rpc_raw.samples.push_back(raw_secs);
    }
  }
  server.Stop();
  serve.join();
  PrintFigure("checkpoint_save_rpc", "throughput_ratio_vs_raw", rpc_raw.Median() / rpc.Median(), "x",
              rpc.samples.size(), mbps(rpc), mbps(rpc_raw),
              {{"note", "end to end over loopback ZeroMQ, encoding included"}, {"state", state_info}});
  return 0;
}

}  // namespace
}  // namespace gantry::storage::bench

int main(int argc, char** argv) { return gantry::storage::bench::Main(argc, argv); }
