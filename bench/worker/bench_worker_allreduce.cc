// Gradient allreduce bus bandwidth under mpirun (bench/worker_allreduce.sh):
// gantry's MpiCommunicator (chunked, on its communication thread) vs one
// flat MPI_Allreduce and (when built with gloo headers) LibTorch's
// ProcessGroupGloo on the same bytes, and memcpy of the same bytes; plus the
// chunk-size sweep that chose MpiCommunicator::Options::chunk_bytes.
// busbw = 2 (W-1)/W x bytes / time (nccl-tests' definition). Rounds
// alternate the sides. Rank 0 prints raw samples as JSON lines; the wrapper
// runs this with and without Gantry's allocator settings
// (GANTRY_MALLOC_TUNING=0: stock OpenMPI, as a plain MPI program gets it),
// alternating, and prints the ratios.
//   mpirun -np 2 bench_worker_allreduce [max_mib=256] [rounds=5] [gloo_store_file]
#include <mpi.h>
#include <torch/torch.h>

#include <cstring>
#include <map>

#include "bench/worker/bench_util.h"
#include "worker/mpi_communicator.h"
#ifdef GANTRY_BENCH_WITH_GLOO
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

using namespace gantry;
using namespace gantry::worker;
using namespace gantry::worker::bench;

int main(int argc, char** argv) {
  auto session = MpiSession::Create(&argc, &argv);
  if (!session.ok()) return 1;
  // MpiSession applied Gantry's allocator settings unless told not to.
  const char* tuning_env = std::getenv("GANTRY_MALLOC_TUNING");
  const bool tuned = tuning_env == nullptr || std::string(tuning_env) != "0";
  const int rank = (*session)->world_rank();
  const int world = (*session)->world_size();
  const int64_t max_mib = argc > 1 ? std::atoll(argv[1]) : 256;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  torch::set_num_threads(1);
  std::map<int64_t, std::unique_ptr<MpiCommunicator>> comms;  // by chunk bytes
  for (int64_t c : {int64_t{256} << 10, int64_t{1} << 20, int64_t{4} << 20, int64_t{16} << 20,
                    int64_t{64} << 20}) {
    comms[c] = std::move(MpiCommunicator::Create(**session, {c})).value();
  }
  MpiCommunicator::Options defaults;
  MpiCommunicator& gantry_comm = *comms.at(defaults.chunk_bytes);
#ifdef GANTRY_BENCH_WITH_GLOO
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
  if (argc > 3) {
    auto store = c10::make_intrusive<c10d::FileStore>(argv[3], world);
    auto opts = c10d::ProcessGroupGloo::Options::create();
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    opts->threads = 1;
    gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, opts);
  }
#endif
  auto busbw = [&](int64_t bytes, double seconds) {
    return 2.0 * (world - 1) / world * static_cast<double>(bytes) / seconds / 1e9;
  };
  // One raw line per (side, size): the wrapper pools lines from processes
  // with and without Gantry's allocator settings and forms the ratios.
  auto raw = [&](const std::string& side, int64_t mib, const std::vector<double>& v) {
    if (rank != 0) return;
    std::string xs;
    for (double x : v) xs += (xs.empty() ? "" : ",") + std::to_string(x);
    std::printf("{\"bench\":\"worker_allreduce_raw\",\"tuned\":%s,\"side\":\"%s\",\"mib\":%lld,\"gbps\":[%s]}\n",
                tuned ? "true" : "false", side.c_str(), static_cast<long long>(mib), xs.c_str());
    std::fflush(stdout);
  };
  for (int64_t mib = 1; mib <= max_mib; mib *= 4) {
    const int64_t bytes = mib << 20;
    torch::Tensor t = torch::ones({bytes / 4}, torch::kFloat32);
    torch::Tensor dst = torch::empty_like(t);
    std::vector<double> g, m, gl, mc;
    const int n = mib >= 64 ? std::max(3, rounds - 2) : rounds;
    const int reps = static_cast<int>(std::clamp<int64_t>(16 / mib, 1, 8));
    // Warm-up, not recorded: first calls at a new size set up buffers.
    (void)gantry_comm.AllreduceSum(t);
    MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    for (int r = 0; r < n; ++r) {
      // Which side goes first alternates: the first call after a barrier
      // absorbs the ranks' skew leaving it.
      // Small sizes time `reps` back-to-back calls (as a training loop
      // issues them), so a sample is not one call's barrier exit skew.
      for (int side = 0; side < 2; ++side) {
        MPI_Barrier(MPI_COMM_WORLD);
        const double t0 = Now();
        if ((side + r) % 2 == 0) {
          for (int i = 0; i < reps; ++i) (void)gantry_comm.AllreduceSum(t);
          g.push_back(busbw(bytes * reps, Now() - t0));
        } else {
          for (int i = 0; i < reps; ++i) {
            MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), MPI_FLOAT, MPI_SUM,
                          MPI_COMM_WORLD);
          }
          m.push_back(busbw(bytes * reps, Now() - t0));
        }
      }
      double t0 = 0;
#ifdef GANTRY_BENCH_WITH_GLOO
      if (gloo) {
        std::vector<at::Tensor> ts = {t};
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = Now();
        gloo->allreduce(ts)->wait();
        gl.push_back(busbw(bytes, Now() - t0));
      }
#endif
      t0 = Now();
      std::memcpy(dst.data_ptr(), t.data_ptr(), static_cast<size_t>(bytes));
      mc.push_back(static_cast<double>(bytes) / (Now() - t0) / 1e9);
    }
    raw("gantry", mib, g);
    raw("mpi", mib, m);
    if (!gl.empty()) raw("gloo", mib, gl);
    raw("memcpy", mib, mc);
  }
  // Chunk sweep at 64 MiB (or the largest size asked for).
  const int64_t sweep_mib = std::min<int64_t>(64, max_mib);
  torch::Tensor t = torch::ones({(sweep_mib << 20) / 4}, torch::kFloat32);
  std::map<int64_t, std::vector<double>> sweep;
  for (auto& [chunk, comm] : comms) (void)comm->AllreduceSum(t);  // warm-up
  for (int r = 0; r < rounds; ++r) {
    for (auto& [chunk, comm] : comms) {
      MPI_Barrier(MPI_COMM_WORLD);
      const double t0 = Now();
      (void)comm->AllreduceSum(t);
      sweep[chunk].push_back(busbw(sweep_mib << 20, Now() - t0));
    }
  }
  for (auto& [chunk, v] : sweep) raw("chunk_" + std::to_string(chunk >> 10) + "KiB", sweep_mib, v);
  comms.clear();
  return 0;
}
