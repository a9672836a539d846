#include "worker/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <nccl.h>
#include <torch/torch.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

namespace gantry::worker {
namespace {

static_assert(std::is_same_v<ncclComm_t, ncclComm*>, "nccl.h's ncclComm_t changed: update the header");
static_assert(std::is_same_v<cudaStream_t, CUstream_st*>, "cudaStream_t changed: update the header");

Status CudaStatus(cudaError_t e, const char* call, const char* file, int line) {
  if (e == cudaSuccess) return Status::Ok();
  return AnnotateStatus(Status::Internal(std::string("CUDA: ") + call + " failed: " + cudaGetErrorString(e) +
                                         " (" + cudaGetErrorName(e) + ")"),
                        file, line);
}

Status NcclStatus(ncclResult_t r, const char* call, ncclComm_t comm, const char* file, int line) {
  if (r == ncclSuccess) return Status::Ok();
  std::string msg = std::string("NCCL: ") + call + " failed: " + ncclGetErrorString(r);
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 13, 0)
  // The detail (which peer, which transport) is only in the last error.
  const char* last = ncclGetLastError(comm);
  if (last != nullptr && *last != '\0') msg += ": " + std::string(last);
#else
  (void)comm;
#endif
  return AnnotateStatus(Status::Internal(std::move(msg)), file, line);
}

// The call is named in the message (nccl-tests' NCCLCHECK, with a Status).
#define GANTRY_CUDA_CALL(fn, ...) CudaStatus(fn(__VA_ARGS__), #fn, __FILE__, __LINE__)
#define GANTRY_NCCL_CALL(comm, fn, ...) NcclStatus(fn(__VA_ARGS__), #fn, comm, __FILE__, __LINE__)

Result<ncclDataType_t> NcclType(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: return ncclFloat32;
    case torch::kDouble: return ncclFloat64;
    case torch::kHalf: return ncclFloat16;
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 10, 0)
    case torch::kBFloat16: return ncclBfloat16;
#endif
    case torch::kInt: return ncclInt32;
    case torch::kLong: return ncclInt64;
    case torch::kByte: return ncclUint8;
    case torch::kChar: return ncclInt8;
    default:
      return Status::InvalidArgument(std::string("NCCL communicator: unsupported dtype ") +
                                     std::string(c10::toString(t)));
  }
}

// This rank's index among the ranks on its host, as the launcher tells it.
int LocalRank(int rank) {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') continue;
    char* end = nullptr;
    long r = std::strtol(v, &end, 10);
    if (*end == '\0' && r >= 0 && r < 1 << 20) return static_cast<int>(r);
  }
  return rank;
}

// Step 1 of the bootstrap: this rank's device, made current.
Result<int> PickDevice(int rank, int requested) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count <= 0) {
    const std::string why = e != cudaSuccess ? std::string(cudaGetErrorString(e)) + " (" + cudaGetErrorName(e) + ")"
                                             : std::string("cudaGetDeviceCount found 0 devices");
    // The runtime caches the failure; clear it so a later call is not blamed.
    (void)cudaGetLastError();
    return Status::FailedPrecondition("no CUDA device visible to rank " + std::to_string(rank) + ": " + why +
                                      " (check the driver, nvidia-smi and CUDA_VISIBLE_DEVICES, or use "
                                      "resources.device: cpu)");
  }
  int device = requested;
  if (device < 0) {
    device = LocalRank(rank) % count;
  } else if (device >= count) {
    return Status::InvalidArgument("NCCL communicator: rank " + std::to_string(rank) + " asked for CUDA device " +
                                   std::to_string(device) + " but sees " + std::to_string(count));
  }
  GANTRY_RETURN_IF_ERROR(GANTRY_CUDA_CALL(cudaSetDevice, device));
  return device;
}

}  // namespace

// A started allreduce: the event recorded after it on the stream, and the
// tensor, held so its memory cannot be reused before the collective is done.
class NcclCommunicator::AsyncWork final : public Work {
 public:
  AsyncWork(NcclCommunicator& comm, cudaEvent_t event, torch::Tensor t)
      : comm_(comm), event_(event), tensor_(std::move(t)) {}
  ~AsyncWork() override {
    // Safe while the event is pending: CUDA releases it once it completes.
    if (event_ != nullptr) (void)cudaEventDestroy(event_);
  }

  Status Wait() override {
    if (!done_) {
      done_ = true;
      status_ = GANTRY_CUDA_CALL(cudaSetDevice, comm_.device_);
      if (status_.ok()) status_ = GANTRY_CUDA_CALL(cudaEventSynchronize, event_);
      if (status_.ok()) status_ = comm_.CheckAsyncError();
      if (!status_.ok()) status_ = comm_.Failed(status_);
      tensor_ = torch::Tensor();
    }
    return status_;
  }

 private:
  NcclCommunicator& comm_;
  cudaEvent_t event_;
  torch::Tensor tensor_;
  bool done_ = false;
  Status status_;
};

Result<std::unique_ptr<NcclCommunicator>> NcclCommunicator::Create(Communicator& bootstrap, Options options) {
  const int rank = bootstrap.rank();
  const int size = bootstrap.size();
  try {
    // 1-2. Pick a device; all ranks learn whether every rank has one.
    Result<int> device = PickDevice(rank, options.device);
    torch::Tensor failures = torch::tensor({device.ok() ? int64_t{0} : int64_t{1}}, torch::kInt64);
    GANTRY_RETURN_IF_ERROR(bootstrap.AllreduceSum(failures).WithContext("NCCL bootstrap"));
    if (!device.ok()) return device.status();
    if (const int64_t n = failures.item<int64_t>(); n > 0) {
      return Status::FailedPrecondition("NCCL bootstrap: " + std::to_string(n) +
                                        " other rank(s) found no usable CUDA device (their logs say why)");
    }
    std::unique_ptr<NcclCommunicator> c(new NcclCommunicator(rank, size, *device));

    // 3. Rank 0's unique id to everyone.
    std::string id_bytes;
    Status id_status;
    if (rank == 0) {
      ncclUniqueId id;
      id_status = GANTRY_NCCL_CALL(nullptr, ncclGetUniqueId, &id);
      if (id_status.ok()) id_bytes.assign(id.internal, sizeof(id.internal));
    }
    GANTRY_RETURN_IF_ERROR(BroadcastBytes(bootstrap, id_bytes, 0).WithContext("NCCL bootstrap: unique id"));
    if (!id_status.ok()) return id_status;
    ncclUniqueId id;
    if (id_bytes.size() != sizeof(id.internal)) {
      return Status::Internal("NCCL bootstrap: rank 0 could not create the NCCL unique id (its log says why)");
    }
    std::memcpy(id.internal, id_bytes.data(), sizeof(id.internal));

    // 4. Join. Blocks until all `size` ranks have called it.
    ncclComm_t comm = nullptr;
    Status st = GANTRY_NCCL_CALL(nullptr, ncclCommInitRank, &comm, size, id, rank);
    if (!st.ok()) {
      int count = 0;
      if (cudaGetDeviceCount(&count) == cudaSuccess && options.device < 0 && LocalRank(rank) >= count) {
        st = st.WithContext("local rank " + std::to_string(LocalRank(rank)) + " shares a GPU (" +
                            std::to_string(count) + " visible): NCCL needs one GPU per rank; start at most " +
                            std::to_string(count) + " ranks per host");
      }
      return st.WithContext("rank " + std::to_string(rank) + " on CUDA device " + std::to_string(*device));
    }
    c->comm_ = comm;

    // 5. The stream (blocking: see the header on why default flags).
    cudaStream_t stream = nullptr;
    GANTRY_RETURN_IF_ERROR(c->Failed(GANTRY_CUDA_CALL(cudaStreamCreate, &stream)));
    c->stream_ = stream;
    return c;
  } catch (const std::exception& e) {
    return Status::Internal(std::string("NCCL bootstrap: ") + e.what());
  }
}

NcclCommunicator::~NcclCommunicator() {
  (void)cudaSetDevice(device_);
  if (comm_ != nullptr) {
    // Let issued collectives finish before freeing; a communicator that saw
    // an error may have peers that will never match them, so abort it.
    bool broken = failed_.load();
    if (!broken && stream_ != nullptr) broken = cudaStreamSynchronize(stream_) != cudaSuccess;
    ncclResult_t async = ncclSuccess;
    if (!broken) broken = ncclCommGetAsyncError(comm_, &async) != ncclSuccess || async != ncclSuccess;
    if (broken) {
      (void)ncclCommAbort(comm_);
    } else {
      (void)ncclCommDestroy(comm_);
    }
  }
  if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
}

Status NcclCommunicator::Failed(Status st) {
  if (!st.ok()) failed_ = true;
  return st;
}

Status NcclCommunicator::CheckAsyncError() {
  ncclResult_t async = ncclSuccess;
  GANTRY_RETURN_IF_ERROR(GANTRY_NCCL_CALL(comm_, ncclCommGetAsyncError, comm_, &async));
  return NcclStatus(async, "an NCCL collective (asynchronous error)", comm_, __FILE__, __LINE__);
}

Status NcclCommunicator::Launch(torch::Tensor& t, int root) {
  if (!t.defined()) return Status::InvalidArgument("NCCL communicator: undefined tensor");
  if (!t.is_cuda()) {
    return Status::InvalidArgument("NCCL communicator: tensor must be on CUDA device " + std::to_string(device_) +
                                   " (got " + t.device().str() + ")");
  }
  if (t.device().index() != device_) {
    return Status::InvalidArgument("NCCL communicator: tensor is on " + t.device().str() +
                                   ", this rank's communicator is on cuda:" + std::to_string(device_));
  }
  if (!t.is_contiguous()) return Status::InvalidArgument("NCCL communicator: tensor must be contiguous");
  GANTRY_ASSIGN_OR_RETURN(ncclDataType_t type, NcclType(t.scalar_type()));
  GANTRY_RETURN_IF_ERROR(Failed(GANTRY_CUDA_CALL(cudaSetDevice, device_)));
  void* buf = t.data_ptr();
  const size_t count = static_cast<size_t>(t.numel());
  if (root < 0) {
    return Failed(GANTRY_NCCL_CALL(comm_, ncclAllReduce, buf, buf, count, type, ncclSum, comm_, stream_));
  }
  return Failed(GANTRY_NCCL_CALL(comm_, ncclBroadcast, buf, buf, count, type, root, comm_, stream_));
}

Status NcclCommunicator::AllreduceSum(torch::Tensor& t) {
  if (t.defined() && t.numel() == 0) return Status::Ok();
  GANTRY_RETURN_IF_ERROR(Launch(t, -1));
  GANTRY_RETURN_IF_ERROR(Failed(GANTRY_CUDA_CALL(cudaStreamSynchronize, stream_)));
  return Failed(CheckAsyncError());
}

Status NcclCommunicator::Broadcast(torch::Tensor& t, int root) {
  if (root < 0 || root >= size_) {
    return Status::InvalidArgument("NCCL communicator: broadcast root " + std::to_string(root) + " out of range");
  }
  if (t.defined() && t.numel() == 0) return Status::Ok();
  GANTRY_RETURN_IF_ERROR(Launch(t, root));
  GANTRY_RETURN_IF_ERROR(Failed(GANTRY_CUDA_CALL(cudaStreamSynchronize, stream_)));
  return Failed(CheckAsyncError());
}

std::unique_ptr<Work> NcclCommunicator::AllreduceSumAsync(torch::Tensor t) {
  if (t.defined() && t.numel() == 0) return std::make_unique<DoneWork>(Status::Ok());
  if (Status st = Launch(t, -1); !st.ok()) return std::make_unique<DoneWork>(st);
  // The event marks the collective's end on our stream; timing is not needed.
  cudaEvent_t event = nullptr;
  Status st = GANTRY_CUDA_CALL(cudaEventCreateWithFlags, &event, cudaEventDisableTiming);
  if (st.ok()) st = GANTRY_CUDA_CALL(cudaEventRecord, event, stream_);
  if (!st.ok()) {
    if (event != nullptr) (void)cudaEventDestroy(event);
    // The collective is launched: wait for it here rather than lose it.
    (void)cudaStreamSynchronize(stream_);
    return std::make_unique<DoneWork>(Failed(st));
  }
  return std::make_unique<AsyncWork>(*this, event, std::move(t));
}

Result<std::unique_ptr<Communicator>> MakeNcclCommunicator(Communicator& bootstrap) {
  GANTRY_ASSIGN_OR_RETURN(std::unique_ptr<NcclCommunicator> c, NcclCommunicator::Create(bootstrap));
  return std::unique_ptr<Communicator>(std::move(c));
}

}  // namespace gantry::worker
