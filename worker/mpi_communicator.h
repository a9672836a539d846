// MPI implementation of Communicator, and the RAII owner of MPI itself.
//
// MpiSession calls MPI_Init_thread on creation and MPI_Finalize on
// destruction; create exactly one per process, before any MpiCommunicator,
// and let it outlive them. MpiCommunicator works on its own duplicate of
// MPI_COMM_WORLD (so library traffic never matches ours) with
// MPI_ERRORS_RETURN, converting MPI error codes to Status with file:line.
//
// Thread safety: MPI is initialised as MPI_THREAD_FUNNELED; only the thread
// that created the session may call into MPI.
#pragma once

#include <mpi.h>

#include <memory>

#include "worker/communicator.h"

namespace gantry::worker {

class MpiSession {
 public:
  // MPI_Init_thread; fails (without aborting) if MPI cannot start.
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
  // Duplicates MPI_COMM_WORLD. `session` must outlive the communicator.
  static Result<std::unique_ptr<MpiCommunicator>> Create(const MpiSession& session);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Status AllreduceSum(torch::Tensor& t) override;
  Status Broadcast(torch::Tensor& t, int root) override;

 private:
  MpiCommunicator(MPI_Comm comm, int rank, int size) : comm_(comm), rank_(rank), size_(size) {}
  MPI_Comm comm_;
  int rank_;
  int size_;
};

}  // namespace gantry::worker
