// NCCL implementation of Communicator for CUDA tensors, bootstrapped over a
// CPU communicator (the MpiCommunicator in gantry-worker). Built only with
// -DGANTRY_WITH_CUDA=ON -DGANTRY_WITH_NCCL=ON.
//
// Bootstrap (NcclCommunicator::Create, a collective over `bootstrap`):
//   1. Every rank picks its device: Options::device, else its local rank on
//      this host (OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID, SLURM_LOCALID;
//      else its rank) modulo cudaGetDeviceCount(), and makes it current.
//   2. The ranks allreduce a failure count over `bootstrap`, so a rank
//      without a usable GPU fails every rank at once (each with a message)
//      instead of leaving its peers blocked in step 4.
//   3. Rank 0 calls ncclGetUniqueId; the id's bytes go to every rank with
//      BroadcastBytes over `bootstrap` (empty bytes: rank 0 failed).
//   4. ncclCommInitRank(size, id, rank): blocks until every rank has joined.
//   5. The communicator's own CUDA stream (cudaStreamCreate).
// NCCL needs one GPU per rank: more ranks than GPUs on a host fail in step 4
// ("Duplicate GPU detected"); the error then says so.
//
// Streams: collectives run on the communicator's stream, created with
// default flags, i.e. a *blocking* stream that synchronizes implicitly with
// the legacy default stream (stream 0), on which LibTorch issues its kernels
// unless told otherwise. So a collective starts only after the kernels that
// produced its input (the Reducer's gradient copies), and later default-
// stream kernels wait for it: no cross-stream events are needed, and no
// c10::cuda stream API (which a CPU-only LibTorch does not ship). The price:
// NCCL kernels and backward kernels serialise on the GPU, so the Reducer's
// overlap hides host-side latency only, not the transfer itself. Regaining
// full overlap needs a non-blocking stream ordered against LibTorch's current
// stream with events.
//
// Completion: AllreduceSum() and Broadcast() synchronize the stream before
// returning; AllreduceSumAsync() records a CUDA event after the collective
// and its Work::Wait() synchronizes on that event. Either then checks
// ncclCommGetAsyncError. A rank that dies mid-collective leaves its peers
// blocked in the synchronize; in gantry-worker mpirun then ends the job.
//
// Errors: every CUDA and NCCL failure comes back as a Status naming the call,
// with cudaGetErrorString / ncclGetErrorString (and ncclGetLastError); none
// throws or aborts. After an NCCL error the destructor aborts the
// communicator (ncclCommAbort) instead of destroying it cleanly.
//
// Thread safety: one caller at a time, but not necessarily one thread: the
// Reducer's hooks start collectives from autograd's device thread. Every
// call makes this communicator's device current on the calling thread.
#pragma once

#include <atomic>
#include <memory>

#include "worker/communicator.h"

// nccl.h's ncclComm_t and cuda_runtime_api.h's cudaStream_t are pointers to
// these; declaring them here keeps CUDA and NCCL headers out of our users.
struct ncclComm;
struct CUstream_st;

namespace gantry::worker {

class NcclCommunicator final : public Communicator {
 public:
  struct Options {
    // CUDA device index for this rank; -1 picks it from the local rank
    // (step 1 above). Tests running ranks as threads set it explicitly.
    int device = -1;
  };

  // Collective over `bootstrap` (every rank of it must call Create, with the
  // same Options::device policy); the new communicator has its ranks and
  // size. `bootstrap` is used only during Create. Fails with
  // failed_precondition when this rank sees no CUDA device.
  static Result<std::unique_ptr<NcclCommunicator>> Create(Communicator& bootstrap, Options options);
  static Result<std::unique_ptr<NcclCommunicator>> Create(Communicator& bootstrap) {
    return Create(bootstrap, Options{});
  }
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // The CUDA device this rank's tensors must live on.
  int device() const { return device_; }

  // Tensors must be CUDA, contiguous, on device(), and of a dtype NCCL
  // reduces: float32/64, float16, bfloat16, int32/64, uint8, int8.
  Status AllreduceSum(torch::Tensor& t) override;
  Status Broadcast(torch::Tensor& t, int root) override;
  std::unique_ptr<Work> AllreduceSumAsync(torch::Tensor t) override;

 private:
  class AsyncWork;

  NcclCommunicator(int rank, int size, int device) : rank_(rank), size_(size), device_(device) {}
  // Validates `t`, makes device_ current and runs the collective on stream_
  // (root < 0: allreduce, else broadcast from root). Does not wait.
  Status Launch(torch::Tensor& t, int root);
  // ncclCommGetAsyncError after a wait; records a failure for the destructor.
  Status CheckAsyncError();
  Status Failed(Status st);

  int rank_;
  int size_;
  int device_;
  ncclComm* comm_ = nullptr;      // owned: ncclCommDestroy / ncclCommAbort
  CUstream_st* stream_ = nullptr;  // owned: cudaStreamDestroy
  std::atomic<bool> failed_{false};  // an NCCL/CUDA error was seen: abort, not destroy
};

// NcclCommunicator::Create(bootstrap) as the generic interface.
Result<std::unique_ptr<Communicator>> MakeNcclCommunicator(Communicator& bootstrap);

// One Communicator for a rank that trains on a GPU: CUDA tensors (gradient
// buckets, parameters) go to `cuda` (NCCL), all others to `cpu` (MPI). The
// trainer's small CPU collectives (stop flag, metrics sums, checkpoint bytes,
// RNG states) thus stay on the CPU instead of costing a device round trip
// each. rank() and size() are the cpu communicator's (`cuda` was bootstrapped
// over it, so they are the same). Each backend keeps its own issue order,
// and every rank issues the same program order, so each backend still sees
// matching collectives on every rank.
//
// `cpu` must outlive this object; `cuda` is owned. Thread safety: as the two
// communicators'.
class ByDeviceCommunicator final : public Communicator {
 public:
  ByDeviceCommunicator(Communicator& cpu, std::unique_ptr<Communicator> cuda)
      : cpu_(cpu), cuda_(std::move(cuda)) {}

  int rank() const override { return cpu_.rank(); }
  int size() const override { return cpu_.size(); }
  Status AllreduceSum(torch::Tensor& t) override { return For(t).AllreduceSum(t); }
  Status Broadcast(torch::Tensor& t, int root) override { return For(t).Broadcast(t, root); }
  std::unique_ptr<Work> AllreduceSumAsync(torch::Tensor t) override {
    Communicator& c = For(t);
    return c.AllreduceSumAsync(std::move(t));
  }

 private:
  Communicator& For(const torch::Tensor& t) { return t.defined() && t.is_cuda() ? *cuda_ : cpu_; }

  Communicator& cpu_;
  std::unique_ptr<Communicator> cuda_;
};

}  // namespace gantry::worker
