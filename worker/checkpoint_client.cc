#include "worker/checkpoint_client.h"

#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "common/ids.h"
#include "model/tensor_wire.h"
#include "worker/checkpoint_plane.h"

namespace gantry::worker {

namespace {

// {name, dtype, shape, data} of one tensor (a copy of its bytes).
Result<json> TensorToJson(const std::string& name, const torch::Tensor& t) {
  GANTRY_ASSIGN_OR_RETURN(std::string dtype, DtypeName(t.scalar_type()));
  try {
    torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    std::vector<uint8_t> bytes(static_cast<size_t>(c.nbytes()));
    if (!bytes.empty()) std::memcpy(bytes.data(), c.data_ptr(), bytes.size());
    return json{{"name", name},
                {"dtype", dtype},
                {"shape", c.sizes().vec()},
                {"data", json::binary(std::move(bytes))}};
  } catch (const std::exception& e) {
    return Status::Internal("checkpoint: copying tensor " + name + ": " + e.what());
  }
}

}  // namespace

CheckpointClient::CheckpointClient(zmq::context_t& ctx, const std::string& endpoint, bool use_inbox)
    : use_inbox_(use_inbox) {
  if (!endpoint.empty()) rpc_.emplace(ctx, endpoint, kTimeout);
}

namespace {

// obj[key] as T (model/tensor_wire.h), errors naming "checkpoint <where>".
template <typename T>
Result<T> Field(const json& obj, const char* key, T fallback, const std::string& where) {
  return model::JsonField<T>(obj, key, std::move(fallback), "checkpoint " + where);
}

Result<json> Object(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return json::object();
  if (!it->is_object()) return Status::Corruption("checkpoint " + where + ": '" + key + "' must be an object");
  return *it;
}

Result<std::optional<TrainerStateRecord>> TrainerStateFrom(const json& ts, const std::string& where) {
  if (!ts.contains("step") || !ts.contains("epoch") || !ts.contains("epoch_offset")) {
    return std::optional<TrainerStateRecord>();
  }
  TrainerStateRecord r;
  const std::string w = where + " trainer_state";
  GANTRY_ASSIGN_OR_RETURN(r.format, Field<int64_t>(ts, "format", 0, w));
  GANTRY_ASSIGN_OR_RETURN(r.step, Field<int64_t>(ts, "step", 0, w));
  GANTRY_ASSIGN_OR_RETURN(r.epoch, Field<int64_t>(ts, "epoch", 0, w));
  GANTRY_ASSIGN_OR_RETURN(r.epoch_offset, Field<int64_t>(ts, "epoch_offset", 0, w));
  GANTRY_ASSIGN_OR_RETURN(r.samples_seen, Field<int64_t>(ts, "samples_seen", 0, w));
  GANTRY_ASSIGN_OR_RETURN(r.world_size, Field<int64_t>(ts, "world_size", 0, w));
  GANTRY_ASSIGN_OR_RETURN(r.batch_size, Field<int64_t>(ts, "batch_size", 0, w));
  GANTRY_ASSIGN_OR_RETURN(r.preempted, Field<bool>(ts, "preempted", false, w));
  if (ts.contains("seed") && !ts["seed"].is_null()) {
    GANTRY_ASSIGN_OR_RETURN(uint64_t seed, Field<uint64_t>(ts, "seed", 0, w));
    r.seed = seed;
  }
  return std::optional<TrainerStateRecord>(r);
}

Result<OptimizerRecord> OptimizerFrom(const json& o, const std::string& where) {
  OptimizerRecord r;
  const std::string w = where + " optimizer_state";
  GANTRY_ASSIGN_OR_RETURN(r.name, Field<std::string>(o, "name", "", w));
  GANTRY_ASSIGN_OR_RETURN(r.lr, Field<double>(o, "lr", 0.0, w));
  GANTRY_ASSIGN_OR_RETURN(r.momentum, Field<double>(o, "momentum", 0.0, w));
  GANTRY_ASSIGN_OR_RETURN(r.weight_decay, Field<double>(o, "weight_decay", 0.0, w));
  return r;
}

// The save_checkpoint body of `c` (docs/protocol.md, "save_checkpoint"),
// without its version: the reverse of CheckpointFromReply (below). Without
// tensors: everything but the tensor list (save_checkpoint_file's body).
Result<json> CheckpointToBody(const Checkpoint& c, bool with_tensors = true) {
  const model::ModelManifest& m = c.manifest;
  json meta = {{"job_name", c.job_name},
               {"world_size", c.world_size},
               {"model", m.description},
               {"model_builtin", m.builtin},
               {"model_hidden", m.hidden},
               {"model_torchscript", m.torchscript},
               {"input_shape", m.input_shape},
               {"num_classes", m.num_classes}};
  if (m.normalize) meta["normalize"] = {{"mean", m.normalize->mean}, {"std", m.normalize->std}};
  json body = {{"model", c.model}, {"job_id", c.job_id},   {"attempt", c.attempt},
               {"step", c.step},   {"epoch", c.epoch},     {"metrics", c.metrics},
               {"meta", std::move(meta)}, {"data_fingerprint", c.data_fingerprint}};
  if (const auto& ts = c.trainer_state) {
    body["trainer_state"] = {{"format", ts->format},         {"step", ts->step},
                             {"epoch", ts->epoch},           {"epoch_offset", ts->epoch_offset},
                             {"samples_seen", ts->samples_seen}, {"world_size", ts->world_size},
                             {"batch_size", ts->batch_size}, {"preempted", ts->preempted}};
    if (ts->seed) body["trainer_state"]["seed"] = *ts->seed;
  }
  if (const auto& o = c.optimizer) {
    body["optimizer_state"] = {
        {"name", o->name}, {"lr", o->lr}, {"momentum", o->momentum}, {"weight_decay", o->weight_decay}};
  }
  if (!c.request_id.empty()) body["request_id"] = c.request_id;
  if (c.parent_version > 0) {
    body["parent_model"] = c.parent_model;
    body["parent_version"] = c.parent_version;
  }
  if (!with_tensors) return body;
  json tensors = json::array();
  for (const auto& [name, t] : c.tensors) {
    GANTRY_ASSIGN_OR_RETURN(json j, TensorToJson(name, t));
    tensors.push_back(std::move(j));
  }
  body["tensors"] = std::move(tensors);
  return body;
}

}  // namespace

Result<Checkpoint> CheckpointFromReply(const json& reply) {
  if (!reply.is_object()) return Status::Corruption("checkpoint: the reply is not an object");
  Checkpoint c;
  GANTRY_ASSIGN_OR_RETURN(c.model, Field<std::string>(reply, "model", "", "reply"));
  GANTRY_ASSIGN_OR_RETURN(c.version, Field<int64_t>(reply, "version", 0, "reply"));
  const std::string where = c.Source();
  GANTRY_ASSIGN_OR_RETURN(c.job_id, Field<std::string>(reply, "job_id", "", where));
  GANTRY_ASSIGN_OR_RETURN(c.attempt, Field<int64_t>(reply, "attempt", 0, where));
  GANTRY_ASSIGN_OR_RETURN(c.step, Field<int64_t>(reply, "step", 0, where));
  GANTRY_ASSIGN_OR_RETURN(c.epoch, Field<int64_t>(reply, "epoch", 0, where));
  GANTRY_ASSIGN_OR_RETURN(json metrics, Object(reply, "metrics", where));
  for (const auto& [name, v] : metrics.items()) {
    if (v.is_number()) c.metrics[name] = v.get<double>();
  }
  GANTRY_ASSIGN_OR_RETURN(json meta, Object(reply, "meta", where));
  GANTRY_ASSIGN_OR_RETURN(c.job_name, Field<std::string>(meta, "job_name", "", where + " meta"));
  GANTRY_ASSIGN_OR_RETURN(c.world_size, Field<int64_t>(meta, "world_size", 0, where + " meta"));
  GANTRY_ASSIGN_OR_RETURN(c.manifest, model::ManifestFromMeta(meta, where));
  // Trainer state: its own field, or inside meta for stores that keep only meta.
  GANTRY_ASSIGN_OR_RETURN(json ts, Object(reply, "trainer_state", where));
  if (!ts.contains("step")) {
    GANTRY_ASSIGN_OR_RETURN(ts, Object(meta, "trainer_state", where + " meta"));
  }
  GANTRY_ASSIGN_OR_RETURN(c.trainer_state, TrainerStateFrom(ts, where));
  GANTRY_ASSIGN_OR_RETURN(json optim, Object(reply, "optimizer_state", where));
  if (!optim.empty()) {
    GANTRY_ASSIGN_OR_RETURN(OptimizerRecord o, OptimizerFrom(optim, where));
    c.optimizer = std::move(o);
  }
  // Lineage: a reply's lineage {parent: {model, version} | null,
  // data_fingerprint}, or a save body's top-level fields.
  GANTRY_ASSIGN_OR_RETURN(json lineage, Object(reply, "lineage", where));
  GANTRY_ASSIGN_OR_RETURN(json parent, Object(lineage, "parent", where + " lineage"));
  const json& lin = parent.empty() ? reply : parent;
  GANTRY_ASSIGN_OR_RETURN(c.parent_model,
                          Field<std::string>(lin, parent.empty() ? "parent_model" : "model", "", where));
  GANTRY_ASSIGN_OR_RETURN(c.parent_version,
                          Field<int64_t>(lin, parent.empty() ? "parent_version" : "version", 0, where));
  GANTRY_ASSIGN_OR_RETURN(c.data_fingerprint,
                          Field<std::string>(lineage.contains("data_fingerprint") ? lineage : reply,
                                             "data_fingerprint", "", where));
  if (!reply.contains("tensors")) return Status::Corruption("checkpoint " + where + " has no tensors");
  auto tensors = TensorsFromJson(reply["tensors"]);
  if (!tensors.ok()) return tensors.status().WithContext("checkpoint " + where);
  c.tensors = std::move(tensors).value();
  return c;
}

Result<std::string> EncodeCheckpoint(const Checkpoint& ckpt) {
  GANTRY_ASSIGN_OR_RETURN(json reply, CheckpointToBody(ckpt));
  reply["version"] = ckpt.version;
  return ToMsgpack(reply);
}

Result<Checkpoint> DecodeCheckpoint(std::string_view bytes) {
  GANTRY_ASSIGN_OR_RETURN(json reply, ParseMsgpack(bytes));
  return CheckpointFromReply(reply);
}

Result<SavedCheckpoint> CheckpointClient::Save(const Checkpoint& checkpoint) {
  const std::string& model = checkpoint.model;
  if (!rpc_) return SavedCheckpoint{model, 0};
  // A storage that is down answers no ping: fail in seconds, not kTimeout.
  // (A server without ping answers invalid_argument: it is alive.)
  if (auto alive = rpc_->Call("ping", json::object(), kProbeTimeout);
      !alive.ok() && (alive.status().code() == StatusCode::kUnavailable ||
                      alive.status().code() == StatusCode::kDeadlineExceeded)) {
    return Status::Unavailable("storage at " + rpc_->endpoint() + " does not answer (" + alive.status().message() +
                               ")");
  }
  int64_t bytes = 0;
  for (const auto& [name, t] : checkpoint.tensors) bytes += static_cast<int64_t>(t.nbytes());
  const auto timeout = std::min<std::chrono::milliseconds>(
      kTimeout, kSaveBase + std::chrono::milliseconds(static_cast<int64_t>(1000.0 * bytes / kSaveBytesPerSecond)));
  // Encoded here, on the saving thread (AsyncCheckpointer's, in async mode).
  Result<json> reply = json::object();
  auto inbox = use_inbox_ ? rpc_->Call("checkpoint_inbox", json::object(), kProbeTimeout)
                          : Result<json>(Status::FailedPrecondition("inbox disabled"));
  if (inbox.ok()) {
    // The data plane: bytes through the inbox, only their layout in the frame.
    GANTRY_ASSIGN_OR_RETURN(json body, CheckpointToBody(checkpoint, /*with_tensors=*/false));
    const std::string id = checkpoint.request_id.empty() ? NewRequestId() : checkpoint.request_id;
    auto up = UploadToInbox(*rpc_, *inbox, checkpoint.tensors, id + "-" + NewRequestId().substr(0, 8), timeout);
    if (!up.ok()) return up.status().WithContext("checkpoint inbox of " + rpc_->endpoint());
    last_save_same_host_ = up->same_host;
    body["file"] = up->file;
    body["tensors"] = std::move(up->tensors);
    reply = rpc_->Call("save_checkpoint_file", body, timeout);
    if (!up->local_path.empty()) ::unlink(up->local_path.c_str());
    // The file vanished (storage restarted and emptied its inbox): retry.
    if (!reply.ok() && reply.status().code() == StatusCode::kNotFound) {
      reply = Status::Unavailable(reply.status().message());
    }
    if (!reply.ok()) return reply.status().WithContext("save_checkpoint_file to " + rpc_->endpoint());
  } else if (inbox.status().code() == StatusCode::kInvalidArgument || !use_inbox_) {
    // A storage without the data plane (unknown request type): one frame.
    GANTRY_ASSIGN_OR_RETURN(json body, CheckpointToBody(checkpoint));
    reply = rpc_->Call("save_checkpoint", body, timeout);
    if (!reply.ok()) return reply.status().WithContext("save_checkpoint to " + rpc_->endpoint());
  } else {
    return inbox.status().WithContext("checkpoint_inbox at " + rpc_->endpoint());
  }
  auto name = GetString(*reply, "model", model);
  auto version = GetInt(*reply, "version");
  if (!name.ok() || !version.ok()) {
    return Status::Internal("save_checkpoint: bad reply from " + rpc_->endpoint() + ": " +
                            (name.ok() ? version.status() : name.status()).message());
  }
  return SavedCheckpoint{*name, *version};
}

Result<std::optional<Checkpoint>> CheckpointClient::LoadLatestOfJob(const std::string& model,
                                                                          const std::string& job_id) {
  using Found = std::optional<Checkpoint>;
  if (!rpc_) return Found();
  auto listed = rpc_->Call("list_versions", {{"model", model}});
  if (!listed.ok()) {
    if (listed.status().code() == StatusCode::kNotFound) return Found();
    return listed.status().WithContext("list_versions " + model + " at " + rpc_->endpoint());
  }
  int64_t newest = 0;
  if (listed->contains("versions") && (*listed)["versions"].is_array()) {
    for (const json& v : (*listed)["versions"]) {
      if (v.is_object() && v.value("job_id", "") == job_id) newest = std::max(newest, v.value("version", int64_t{0}));
    }
  }
  if (newest == 0) return Found();
  const std::string ref = "v" + std::to_string(newest);
  auto loaded = rpc_->Call("load_checkpoint", {{"model", model}, {"ref", ref}, {"version", newest}, {"job_id", job_id}});
  if (!loaded.ok()) return loaded.status().WithContext("load_checkpoint " + model + "@" + ref);
  auto ckpt = CheckpointFromReply(*loaded);
  if (!ckpt.ok()) return ckpt.status().WithContext("load_checkpoint " + model + "@" + ref);
  if (ckpt->version != newest) {
    return Status::Internal("load_checkpoint " + model + "@" + ref + ": the reply holds another version");
  }
  return Found(std::move(ckpt).value());
}

Result<Checkpoint> CheckpointClient::LoadRef(const std::string& model, const std::string& ref, bool model_only) {
  if (!rpc_) return Status::FailedPrecondition("no storage endpoint: cannot load " + model + "@" + ref);
  json body = {{"model", model}, {"ref", ref}};
  // vN also travels as {version: N}, the form the issue names.
  if (ref.size() > 1 && ref.size() < 19 && ref[0] == 'v' && ref.find_first_not_of("0123456789", 1) == std::string::npos) {
    body["version"] = std::stoll(ref.substr(1));
  }
  if (model_only) body["include"] = "model";
  auto loaded = rpc_->Call("load_checkpoint", body);
  if (!loaded.ok()) return loaded.status().WithContext("load_checkpoint " + model + "@" + ref);
  auto ckpt = CheckpointFromReply(*loaded);
  if (!ckpt.ok()) return ckpt.status().WithContext("load_checkpoint " + model + "@" + ref);
  return std::move(ckpt).value();
}

}  // namespace gantry::worker
