#include "coordinator/retrain/registry.h"

namespace gantry::coordinator {

StorageRegistry::StorageRegistry(zmq::context_t& ctx, std::string endpoint, std::chrono::milliseconds timeout)
    : ctx_(ctx), endpoint_(std::move(endpoint)), timeout_(timeout) {}

Result<json> StorageRegistry::Call(const std::string& type, const json& body) {
  if (endpoint_.empty()) {
    return Status::FailedPrecondition("retraining needs the storage service: start the coordinator with --storage");
  }
  if (!client_) client_.emplace(ctx_, endpoint_, timeout_);
  return client_->Call(type, body, timeout_);
}

Result<std::optional<int64_t>> StorageRegistry::ResolveAlias(const std::string& model, const std::string& alias) {
  auto r = Call("show_version", {{"model", model}, {"ref", alias}});
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kNotFound) return std::optional<int64_t>();
    return r.status();
  }
  auto v = r->find("version");
  if (v == r->end() || !v->is_number_integer()) return Status::Internal("storage show_version: no version in reply");
  return std::optional<int64_t>(v->get<int64_t>());
}

Status StorageRegistry::SetAlias(const std::string& model, const std::string& alias, int64_t version) {
  return Call("set_alias", {{"model", model}, {"alias", alias}, {"ref", "v" + std::to_string(version)}}).status();
}

Result<std::optional<SavedVersion>> StorageRegistry::LatestOfJob(const std::string& model,
                                                                 const std::string& job_id) {
  auto listing = Call("list_versions", {{"model", model}});
  if (!listing.ok()) {
    if (listing.status().code() == StatusCode::kNotFound) return std::optional<SavedVersion>();
    return listing.status();
  }
  std::optional<SavedVersion> best;
  for (const json& v : listing->value("versions", json::array())) {
    if (v.value("job_id", "") != job_id) continue;
    const int64_t n = v.value("version", int64_t{0});
    if (best && best->version >= n) continue;
    SavedVersion s;
    s.version = n;
    const json metrics = v.value("metrics", json::object());
    for (auto it = metrics.begin(); it != metrics.end(); ++it) {
      if (it->is_number()) s.metrics[it.key()] = it->get<double>();
    }
    best = std::move(s);
  }
  if (!best) return best;
  // The training data's fingerprint is in the version's lineage.
  auto lineage = Call("lineage", {{"model", model}, {"ref", "v" + std::to_string(best->version)}});
  if (!lineage.ok()) return lineage.status().WithContext("reading the lineage of " + model + "@v" +
                                                         std::to_string(best->version));
  if (auto fp = lineage->find("data_fingerprint"); fp != lineage->end() && fp->is_string()) {
    best->data_fingerprint = fp->get<std::string>();
  }
  return best;
}

}  // namespace gantry::coordinator
