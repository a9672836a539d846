#include "storage/registry_feed.h"

#include "common/curve.h"
#include "common/log.h"
#include "common/msgpack.h"

namespace gantry::storage {

RegistryFeed::RegistryFeed(zmq::context_t& ctx) : pub_(ctx, zmq::socket_type::pub) {
  pub_.set(zmq::sockopt::linger, 0);
}

Status RegistryFeed::Bind(const std::string& address) {
  std::string addr = address;
  // ":0" means "any free port" as for RpcServer; ZeroMQ spells it ":*".
  if (addr.size() > 2 && addr.compare(addr.size() - 2, 2, ":0") == 0) addr.back() = '*';
  GANTRY_RETURN_IF_ERROR(CheckBindAllowed(addr, ProcessCurveEnabled(), "registry feed"));
  GANTRY_RETURN_IF_ERROR(MakeCurveServer(pub_));
  try {
    pub_.bind(addr);
    endpoint_ = pub_.get(zmq::sockopt::last_endpoint);
    return Status::Ok();
  } catch (const zmq::error_t& e) {
    return Status::Unavailable("cannot bind the registry feed " + addr + ": " + e.what() +
                               " (is another Gantry service using this port?)");
  }
}

void RegistryFeed::VersionSaved(const SaveResult& saved) {
  Publish(saved.model, {{"v", 1}, {"type", "version_saved"}, {"model", saved.model}, {"version", saved.version}});
}

void RegistryFeed::AliasMoved(const AliasChange& change) {
  json e = {{"v", 1}, {"type", "alias_moved"}, {"model", change.model}, {"alias", change.alias},
            {"version", change.version}};
  if (change.previous) e["previous"] = *change.previous;
  Publish(change.model, e);
}

void RegistryFeed::AliasRemoved(const AliasChange& change) {
  Publish(change.model, {{"v", 1}, {"type", "alias_removed"}, {"model", change.model}, {"alias", change.alias},
                         {"version", change.version}});
}

void RegistryFeed::VersionDeleted(const std::string& model, int64_t version) {
  Publish(model, {{"v", 1}, {"type", "version_deleted"}, {"model", model}, {"version", version}});
}

void RegistryFeed::Publish(const std::string& model, const json& event) {
  if (endpoint_.empty()) return;
  const std::string topic = kRegistryTopicPrefix + model;
  const std::string payload = msgpack::Encode(event);
  // PUB never blocks: a slow subscriber loses events past its HWM rather
  // than stalling the registry.
  try {
    (void)pub_.send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    (void)pub_.send(zmq::buffer(payload), zmq::send_flags::dontwait);
  } catch (const zmq::error_t& e) {
    spdlog::warn("registry feed publish failed: {}", e.what());
  }
}

}  // namespace gantry::storage
