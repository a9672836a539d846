#include "worker/mpi_communicator.h"

#include <climits>
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
  // MPI counts are int; larger buffers need chunking, which nothing needs yet.
  if (t.numel() > INT_MAX) return Status::InvalidArgument("MPI communicator: tensor too large for one call");
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<MpiSession>> MpiSession::Create(int* argc, char*** argv) {
  int provided = 0;
  GANTRY_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
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

Result<std::unique_ptr<MpiCommunicator>> MpiCommunicator::Create(const MpiSession& session) {
  MPI_Comm comm = MPI_COMM_NULL;
  GANTRY_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm));
  GANTRY_MPI_CHECK(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN));
  return std::unique_ptr<MpiCommunicator>(
      new MpiCommunicator(comm, session.world_rank(), session.world_size()));
}

MpiCommunicator::~MpiCommunicator() {
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

Status MpiCommunicator::AllreduceSum(torch::Tensor& t) {
  GANTRY_RETURN_IF_ERROR(CheckBuffer(t));
  GANTRY_ASSIGN_OR_RETURN(MPI_Datatype type, MpiType(t));
  if (size_ == 1 || t.numel() == 0) return Status::Ok();
  GANTRY_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), type,
                                 MPI_SUM, comm_));
  return Status::Ok();
}

Status MpiCommunicator::Broadcast(torch::Tensor& t, int root) {
  GANTRY_RETURN_IF_ERROR(CheckBuffer(t));
  GANTRY_ASSIGN_OR_RETURN(MPI_Datatype type, MpiType(t));
  if (root < 0 || root >= size_) {
    return Status::InvalidArgument("MPI communicator: broadcast root " + std::to_string(root) +
                                   " out of range");
  }
  if (size_ == 1 || t.numel() == 0) return Status::Ok();
  GANTRY_MPI_CHECK(MPI_Bcast(t.data_ptr(), static_cast<int>(t.numel()), type, root, comm_));
  return Status::Ok();
}

}  // namespace gantry::worker
