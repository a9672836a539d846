// MPI implementation of Communicator, and the RAII owner of MPI itself.
//
// MpiSession calls MPI_Init_thread (MPI_THREAD_SERIALIZED) on creation and
// MPI_Finalize on destruction; create exactly one per process, before any
// MpiCommunicator, and let it outlive them. MpiCommunicator works on its own
// duplicate of MPI_COMM_WORLD (so library traffic never matches ours) with
// MPI_ERRORS_RETURN, converting MPI error codes to Status with file:line.
//
// Every MPI call of a communicator runs on its CommQueue thread, in the
// order the collectives were issued; the synchronous calls queue and wait.
// So MPI sees one thread at a time (SERIALIZED suffices), and
// AllreduceSumAsync() overlaps a reduction with the caller's computation.
//
// Why large reductions used to collapse: OpenMPI 4.1's allreduce mallocs a
// scratch buffer as large as the message on every call and frees it after.
// glibc serves requests above its mmap threshold (dynamic, at most 32 MiB)
// with a fresh mmap, so every call page-faults in zeroed memory and unmaps
// it again: 0.4 GB/s at 32-128 MiB against ~5 GB/s below. MpiSession turns
// that off (TuneMallocForCollectives below). Reductions are still cut into
// Options::chunk_bytes calls so that one bucket never needs a scratch
// buffer of its own size (docs/performance.md, "Worker").
//
// Thread safety: one calling thread per communicator.
#pragma once

#include <mpi.h>

#include <memory>

#include "worker/comm_queue.h"
#include "worker/communicator.h"

namespace gantry::worker {

// Keeps large temporary buffers in the heap instead of fresh mmaps: sets
// glibc's mmap threshold to 256 MiB and its trim threshold to 1 GiB, so
// MPI's per-call scratch buffers (and LibTorch's per-step activations) are
// reused rather than faulted in and zeroed on every call. Memory freed
// stays in the process, as with any caching allocator. Skipped when
// GANTRY_MALLOC_TUNING=0 (to measure stock behaviour). Returns whether the
// settings were applied.
bool TuneMallocForCollectives();

class MpiSession {
 public:
  // TuneMallocForCollectives(), then MPI_Init_thread; fails (without
  // aborting) if MPI cannot start or cannot give MPI_THREAD_SERIALIZED.
  static Result<std::unique_ptr<MpiSession>> Create(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int world_rank() const { return rank_; }
  int world_size() const { return size_; }
  // Ends every rank of the job with `exit_code` so that peers blocked in a
  // collective do not hang. Does not return.
  [[noreturn]] void Abort(int exit_code);

 private:
  MpiSession(int rank, int size) : rank_(rank), size_(size) {}
  int rank_;
  int size_;
};

class MpiCommunicator final : public Communicator {
 public:
  struct Options {
    // Largest single MPI_Allreduce: keeps MPI's per-call scratch buffer
    // small whatever the bucket size. Each call costs ~10-50 us of latency;
    // 4 MiB measured best or level at 64 MiB on the 2-core reference machine
    // (docs/performance.md, "Worker": chunk sweep).
    int64_t chunk_bytes = int64_t{4} << 20;
  };

  // Duplicates MPI_COMM_WORLD. `session` must outlive the communicator.
  static Result<std::unique_ptr<MpiCommunicator>> Create(const MpiSession& session, Options options);
  static Result<std::unique_ptr<MpiCommunicator>> Create(const MpiSession& session) {
    return Create(session, Options{});
  }
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Status AllreduceSum(torch::Tensor& t) override;
  Status Broadcast(torch::Tensor& t, int root) override;
  std::unique_ptr<Work> AllreduceSumAsync(torch::Tensor t) override;

  // The raw communicator, for backends bootstrapped over MPI (NCCL's
  // unique id). Use only through RunOnCommThread().
  MPI_Comm comm() const { return comm_; }
  Status RunOnCommThread(std::function<Status()> job) { return queue_->Run(std::move(job)); }

 private:
  MpiCommunicator(MPI_Comm comm, int rank, int size, Options options);
  Status AllreduceNow(const torch::Tensor& t);

  MPI_Comm comm_;
  int rank_;
  int size_;
  Options options_;
  std::unique_ptr<CommQueue> queue_;
};

}  // namespace gantry::worker
