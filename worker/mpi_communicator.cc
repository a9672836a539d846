#include "worker/mpi_communicator.h"

#include <malloc.h>

#include <climits>
#include <cstring>
#include <cstdlib>
#include <string>

namespace gantry::worker {
namespace {

Status MpiError(int code, const char* what, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) len = 0;
  return AnnotateStatus(
      Status::Internal(std::string(what) + " failed: " + std::string(text, static_cast<size_t>(len))),
      file, line);
}

#define GANTRY_MPI_CHECK(call)                                           \
  do {                                                                   \
    int _gantry_mpi_rc = (call);                                         \
    if (_gantry_mpi_rc != MPI_SUCCESS) {                                 \
      return MpiError(_gantry_mpi_rc, #call, __FILE__, __LINE__);        \
    }                                                                    \
  } while (0)

// MPI datatype of a tensor's elements, or an error naming the dtype.
Result<MPI_Datatype> MpiType(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat: return MPI_FLOAT;
    case torch::kDouble: return MPI_DOUBLE;
    case torch::kLong: return MPI_INT64_T;
    case torch::kInt: return MPI_INT32_T;
    case torch::kByte: return MPI_UINT8_T;
    default:
      return Status::InvalidArgument(std::string("MPI communicator: unsupported dtype ") +
                                     std::string(c10::toString(t.scalar_type())));
  }
}

Status CheckBuffer(const torch::Tensor& t) {
  if (!t.defined()) return Status::InvalidArgument("MPI communicator: undefined tensor");
  if (!t.device().is_cpu()) {
    return Status::InvalidArgument("MPI communicator: tensor must be on the CPU (got " +
                                   t.device().str() + ")");
  }
  if (!t.is_contiguous()) return Status::InvalidArgument("MPI communicator: tensor must be contiguous");
  return Status::Ok();
}

}  // namespace

bool TuneMallocForCollectives() {
  const char* env = std::getenv("GANTRY_MALLOC_TUNING");
  if (env != nullptr && std::strcmp(env, "0") == 0) return false;
  // Both are needed: the mmap threshold keeps big blocks in the heap, the
  // trim threshold stops free() from handing the heap top straight back.
  const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, 256 << 20) == 1;
  const bool trim_ok = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
  return mmap_ok && trim_ok;
}

Result<std::unique_ptr<MpiSession>> MpiSession::Create(int* argc, char*** argv) {
  (void)TuneMallocForCollectives();
  int provided = 0;
  GANTRY_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided));
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    return Status::FailedPrecondition(
        "MPI: this MPI library gives thread level " + std::to_string(provided) +
        ", gantry-worker needs MPI_THREAD_SERIALIZED (its collectives run on a communication thread)");
  }
  int rank = 0;
  int size = 0;
  GANTRY_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  GANTRY_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
  return std::unique_ptr<MpiSession>(new MpiSession(rank, size));
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiSession::Abort(int exit_code) {
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort should not return; make sure.
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm, int rank, int size, Options options)
    : comm_(comm), rank_(rank), size_(size), options_(options), queue_(std::make_unique<CommQueue>()) {}

Result<std::unique_ptr<MpiCommunicator>> MpiCommunicator::Create(const MpiSession& session,
                                                                 Options options) {
  if (options.chunk_bytes < 1024) {
    return Status::InvalidArgument("MPI communicator: chunk_bytes must be >= 1024 (got " +
                                   std::to_string(options.chunk_bytes) + ")");
  }
  MPI_Comm comm = MPI_COMM_NULL;
  GANTRY_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm));
  GANTRY_MPI_CHECK(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN));
  return std::unique_ptr<MpiCommunicator>(
      new MpiCommunicator(comm, session.world_rank(), session.world_size(), options));
}

MpiCommunicator::~MpiCommunicator() {
  // Free on the queue's thread, after every queued collective, then join it.
  (void)queue_->Run([this] {
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
    return Status::Ok();
  });
  queue_.reset();
}

Status MpiCommunicator::AllreduceNow(const torch::Tensor& t) {
  GANTRY_ASSIGN_OR_RETURN(MPI_Datatype type, MpiType(t));
  const int64_t item = static_cast<int64_t>(t.element_size());
  const int64_t per_chunk = std::max<int64_t>(1, std::min<int64_t>(options_.chunk_bytes / item, INT_MAX));
  char* base = static_cast<char*>(t.data_ptr());
  for (int64_t off = 0; off < t.numel(); off += per_chunk) {
    const int count = static_cast<int>(std::min(per_chunk, t.numel() - off));
    GANTRY_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, base + off * item, count, type, MPI_SUM, comm_));
  }
  return Status::Ok();
}

std::unique_ptr<Work> MpiCommunicator::AllreduceSumAsync(torch::Tensor t) {
  if (Status st = CheckBuffer(t); !st.ok()) return std::make_unique<DoneWork>(st);
  if (auto type = MpiType(t); !type.ok()) return std::make_unique<DoneWork>(type.status());
  if (size_ == 1 || t.numel() == 0) return std::make_unique<DoneWork>(Status::Ok());
  return queue_->Push([this, t = std::move(t)] { return AllreduceNow(t); });
}

Status MpiCommunicator::AllreduceSum(torch::Tensor& t) {
  GANTRY_RETURN_IF_ERROR(CheckBuffer(t));
  GANTRY_RETURN_IF_ERROR(MpiType(t).status());
  if (size_ == 1 || t.numel() == 0) return Status::Ok();
  // Inline on this thread when no asynchronous reduction is pending.
  return queue_->Run([&] { return AllreduceNow(t); });
}

Status MpiCommunicator::Broadcast(torch::Tensor& t, int root) {
  GANTRY_RETURN_IF_ERROR(CheckBuffer(t));
  GANTRY_ASSIGN_OR_RETURN(MPI_Datatype type, MpiType(t));
  if (root < 0 || root >= size_) {
    return Status::InvalidArgument("MPI communicator: broadcast root " + std::to_string(root) +
                                   " out of range");
  }
  if (size_ == 1 || t.numel() == 0) return Status::Ok();
  if (t.numel() > INT_MAX) return Status::InvalidArgument("MPI communicator: broadcast too large for one call");
  return queue_->Run([&] {
    GANTRY_MPI_CHECK(MPI_Bcast(t.data_ptr(), static_cast<int>(t.numel()), type, root, comm_));
    return Status::Ok();
  });
}

}  // namespace gantry::worker
