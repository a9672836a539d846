#include "worker/communicator.h"

#include <torch/torch.h>

#include <cstring>

namespace gantry::worker {

Status BroadcastBytes(Communicator& comm, std::string& bytes, int root) {
  try {
    torch::Tensor len = torch::tensor({static_cast<int64_t>(bytes.size())}, torch::kInt64);
    GANTRY_RETURN_IF_ERROR(comm.Broadcast(len, root));
    const int64_t n = len.item<int64_t>();
    torch::Tensor buf = torch::empty({n}, torch::kUInt8);
    if (comm.rank() == root && n > 0) std::memcpy(buf.data_ptr(), bytes.data(), static_cast<size_t>(n));
    GANTRY_RETURN_IF_ERROR(comm.Broadcast(buf, root));
    if (comm.rank() != root) bytes.assign(static_cast<const char*>(buf.data_ptr()), static_cast<size_t>(n));
  } catch (const std::exception& e) {
    return Status::Internal(std::string("broadcasting bytes: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace gantry::worker
