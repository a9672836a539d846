// The checkpoint data plane (issue 9, item 3; docs/performance.md,
// "Checkpoint data plane"): a worker's end-to-end save of a ~100 MiB state
// through gantry::worker::CheckpointClient, against a raw write + fdatasync
// of the same bytes into the same folder, in one run, interleaved:
//   - plane: checkpoint_inbox, the tensors written into storage's inbox
//     (same host), save_checkpoint_file, storage's checksum check and
//     Registry::Save (staged, fdatasynced, renamed, indexed);
//   - frame: the same client with the inbox off: one save_checkpoint frame.
// The storage service runs in this process on its own thread (ZeroMQ over
// loopback). Every round changes every tensor, so no bytes are shared with
// an earlier version. Usage: bench_checkpoint_plane [--rounds N] [--mb M].
#include <fcntl.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "bench/storage/bench_common.h"
#include "common/clock.h"
#include "common/rpc.h"
#include "storage/registry.h"
#include "storage/storage_service.h"
#include "worker/checkpoint_client.h"

namespace gantry::storage::bench {
namespace {

constexpr const char* kBench = "bench_checkpoint_plane";

double RawWrite(const model::TensorMap& tensors, const std::string& path) {
  auto t0 = std::chrono::steady_clock::now();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Check(Status::Internal(std::strerror(errno)), kBench, "raw open");
  for (const auto& [name, t] : tensors) {
    const auto* p = static_cast<const uint8_t*>(t.data_ptr());
    size_t left = static_cast<size_t>(t.nbytes());
    while (left > 0) {
      ssize_t n = ::write(fd, p, left);
      if (n < 0) Check(Status::Internal(std::strerror(errno)), kBench, "raw write");
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  if (::fdatasync(fd) != 0) Check(Status::Internal(std::strerror(errno)), kBench, "raw fdatasync");
  ::close(fd);
  double secs = Seconds(t0);
  ::unlink(path.c_str());
  return secs;
}

int Main(int argc, char** argv) {
  Args args = ParseArgs(argc, argv);
  torch::manual_seed(1);
  worker::Checkpoint ckpt;
  ckpt.model = "bench-plane";
  ckpt.job_id = "j-bench";
  int64_t bytes = 0;
  for (int i = 0; i < args.mb; ++i) {
    ckpt.tensors["layer" + std::to_string(i) + ".weight"] = torch::rand({512, 512});  // 1 MiB float32
    ckpt.tensors["layer" + std::to_string(i) + ".bias"] = torch::rand({512});
  }
  for (const auto& [n, t] : ckpt.tensors) bytes += t.nbytes();

  ScratchDir dir;
  SystemClock clock;
  auto reg = Registry::Open(dir.path(), clock);
  Check(reg.status(), kBench, "open registry");
  zmq::context_t ctx;
  RpcServerOptions options;
  options.max_message_bytes = int64_t{1} << 30;
  RpcServer server(ctx, options);
  RegisterStorageHandlers(server, *reg);
  Check(server.Bind(), kBench, "bind");
  std::thread serve([&] { (void)server.Serve(); });

  Stats plane, frame, raw;
  bool same_host = false;
  {
    worker::CheckpointClient via_plane(ctx, server.endpoint(), /*use_inbox=*/true);
    worker::CheckpointClient via_frame(ctx, server.endpoint(), /*use_inbox=*/false);
    RpcClient admin(ctx, server.endpoint(), std::chrono::seconds(120));
    float touch = 0;
    auto fresh = [&] {  // every tensor changes: nothing is shared with a stored blob
      touch += 1;
      for (auto& [n, t] : ckpt.tensors) t.view(-1)[0] = touch;
    };
    auto save = [&](worker::CheckpointClient& client, Stats& into, int64_t step, bool keep) {
      fresh();
      ckpt.step = step;
      auto t0 = std::chrono::steady_clock::now();
      auto saved = client.Save(ckpt);
      double secs = Seconds(t0);
      Check(saved.status(), kBench, "save");
      if (keep) into.samples.push_back(secs);
      Check(admin.Call("delete_version", {{"model", ckpt.model}, {"ref", "latest"}, {"force", true}}).status(),
            kBench, "delete");
    };
    for (int r = 0; r < args.rounds + 1; ++r) {
      const bool keep = r > 0;  // round 0 warms up
      save(via_plane, plane, 2 * r + 1, keep);
      same_host = via_plane.last_save_same_host();
      save(via_frame, frame, 2 * r + 2, keep);
      fresh();
      double secs = RawWrite(ckpt.tensors, dir.path() + "/raw.bin");
      if (keep) raw.samples.push_back(secs);
    }
  }
  server.Stop();
  serve.join();
  auto mbps = [&](const Stats& s) {
    json j = s.ToJson("s");
    j["mib_per_s"] = static_cast<double>(bytes) / (1 << 20) / s.Median();
    return j;
  };
  const json state = {{"bytes", bytes}, {"tensors", ckpt.tensors.size()}};
  PrintFigure("checkpoint_plane", "throughput_ratio_vs_raw", raw.Median() / plane.Median(), "x",
              plane.samples.size(), mbps(plane), mbps(raw),
              {{"goal", ">= 0.5"}, {"same_host", same_host}, {"state", state},
               {"note", "worker CheckpointClient::Save through the inbox vs write+fdatasync"}});
  PrintFigure("checkpoint_plane", "frame_throughput_ratio_vs_raw", raw.Median() / frame.Median(), "x",
              frame.samples.size(), mbps(frame), mbps(raw),
              {{"state", state}, {"note", "the same client with the inbox off: one save_checkpoint frame"}});
  return 0;
}

}  // namespace
}  // namespace gantry::storage::bench

int main(int argc, char** argv) { return gantry::storage::bench::Main(argc, argv); }
