// The worker's half of the checkpoint data plane (storage/inbox.h,
// docs/storage.md): the tensor bytes of a save go into the storage's inbox
// instead of one ZeroMQ frame, and save_checkpoint_file carries only their
// layout.
//
//   1. checkpoint_inbox {} -> {dir, token, chunk_bytes}.
//   2. Same host (<dir>/.token holds `token`): write the tensors, back to
//      back, into <dir>/<id>.part straight from the snapshot's memory (no
//      fsync: storage copies them into its own fsynced pack).
//      Otherwise: stream them with put_chunk {file, offset, data}, at most
//      chunk_bytes a frame.
//   3. The caller sends save_checkpoint_file with the returned tensor list
//      [{name, dtype, shape, offset, bytes, checksum}] (FastChecksum).
//
// Thread safety: one thread at a time (the RpcClient's).
#pragma once

#include <chrono>
#include <string>

#include "common/rpc.h"
#include "model/checkpoint_model.h"

namespace gantry::worker {

struct InboxUpload {
  std::string file;        // the inbox file name for save_checkpoint_file
  std::string local_path;  // set when written directly (same host): remove after the save
  json tensors = json::array();
  bool same_host = false;
};

// Writes `tensors` into the inbox that `inbox` (a checkpoint_inbox reply)
// names; `id` (lowercase hex) names the file.
Result<InboxUpload> UploadToInbox(RpcClient& rpc, const json& inbox, const model::TensorMap& tensors,
                                  const std::string& id, std::chrono::milliseconds timeout);

}  // namespace gantry::worker
