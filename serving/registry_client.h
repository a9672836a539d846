// RegistryClient: what gantry-serve and gantry-optimize need from the storage
// service, over its RPC API (docs/protocol.md, "Storage"):
//   ping             -> endpoints.feed (the registry feed, registry_feed.h)
//   load_checkpoint  {model, ref, include: "model"} -> a LoadedVersion
//   save_checkpoint  (an optimised version, with lineage) -> version
//   tag_version      {model, ref, tag}
//   get_version      {model, ref} -> version (Resolve)
// The wire shape is the worker's (worker/checkpoint_client.h); the tensor
// list and the typed field reader are model/tensor_wire.h, shared with the
// worker; the few meta fields serving reads are decoded here.
// The network is built from the decoded manifest by gantry::model.
//
// Thread safety: one thread at a time (RpcClient). The zmq context must
// outlive it.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "common/rpc.h"
#include "drift/profile.h"
#include "model/checkpoint_model.h"

namespace gantry::serving {

// meta.quantization of a version made by `gantry ckpt optimize --int8`.
inline constexpr const char* kQuantizationDynamicInt8 = "dynamic_int8";

struct LoadedVersion {
  std::string model;
  int64_t version = 0;
  model::ModelManifest manifest;
  model::TensorMap tensors;  // weights only
  std::map<std::string, double> metrics;
  std::string quantization;  // meta.quantization; empty = fp32
  json meta;                 // the whole meta block (copied into derived versions)
  // The training data's drift profile (tensor trainer/drift_profile) when
  // loaded with_profile and the version has one; profile_error says why a
  // stored one could not be read (absent: not an error).
  std::optional<drift::ReferenceProfile> profile;
  std::string profile_error;

  std::string Source() const { return model + "@v" + std::to_string(version); }
};

// A version derived from another (gantry ckpt optimize).
struct DerivedVersion {
  std::string model;
  std::string parent_model;
  int64_t parent_version = 0;
  json meta;
  std::map<std::string, double> metrics;
  model::TensorMap tensors;
};

class RegistryClient {
 public:
  static constexpr std::chrono::seconds kTimeout{60};
  RegistryClient(zmq::context_t& ctx, const std::string& endpoint);

  // The PUB endpoint of the registry feed from the service's ping.
  Result<std::string> FeedEndpoint();
  // `ref`: vN, N, an alias or "latest". with_profile: a full load (training
  // state included) that also decodes the version's drift profile.
  Result<LoadedVersion> Load(const std::string& model, const std::string& ref, bool with_profile = false);
  // The version `ref` names now (get_version), without loading it.
  Result<int64_t> Resolve(const std::string& model, const std::string& ref);
  // Saves `v` as a new version of v.model; returns its number.
  Result<int64_t> Save(const DerivedVersion& v);
  Status Tag(const std::string& model, int64_t version, const std::string& tag);

 private:
  RpcClient rpc_;
};

// Decoder, exposed for tests (the manifest: model::ManifestFromMeta).
Result<model::TensorMap> WeightTensorsFromJson(const json& tensors);

}  // namespace gantry::serving
