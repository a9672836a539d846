#include "serving/reloader.h"

#include <cctype>

#include "common/curve.h"
#include "common/log.h"
#include "common/msgpack.h"
#include "common/protocol.h"

namespace gantry::serving {

bool FollowsRef(const std::string& ref) {
  std::string_view r = ref;
  if (!r.empty() && (r[0] == 'v' || r[0] == 'V')) r.remove_prefix(1);
  if (r.empty()) return true;
  for (char c : r) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return true;
  }
  return false;
}

Reloader::Reloader(zmq::context_t& ctx, std::string feed_endpoint, LoadFn load, ResolveFn resolve,
                   std::chrono::milliseconds reconcile_after)
    : sub_(ctx, zmq::socket_type::sub),
      feed_endpoint_(std::move(feed_endpoint)),
      load_(std::move(load)),
      resolve_(std::move(resolve)),
      reconcile_after_(reconcile_after) {
  sub_.set(zmq::sockopt::linger, 0);
}

Reloader::~Reloader() { Stop(); }

Status Reloader::Subscribe(const std::vector<std::string>& registry_models) {
  try {
    for (const auto& m : registry_models) sub_.set(zmq::sockopt::subscribe, "registry/" + m);
    MakeCurveClient(sub_);
    sub_.connect(feed_endpoint_);
  } catch (const zmq::error_t& e) {
    return Status::Unavailable("registry feed " + feed_endpoint_ + ": " + e.what());
  }
  return Status::Ok();
}

void Reloader::Start(std::vector<DeployedModel*> models) {
  models_ = std::move(models);
  thread_ = std::thread([this] { Run(); });
}

void Reloader::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

Reloader::Stats Reloader::stats() const { return {events_.load(), reloads_.load(), failures_.load()}; }

void Reloader::Run() {
  const auto reconcile_at = std::chrono::steady_clock::now() + reconcile_after_;
  bool reconciled = false;
  while (!stop_.load()) {
    zmq::pollitem_t item{static_cast<void*>(sub_), 0, ZMQ_POLLIN, 0};
    // The timeout only bounds how late Stop() is noticed; events wake the
    // poll at once.
    zmq::poll(&item, 1, std::chrono::milliseconds(100));
    if (item.revents & ZMQ_POLLIN) {
      zmq::message_t topic, payload;
      if (sub_.recv(topic, zmq::recv_flags::dontwait) && topic.more() &&
          sub_.recv(payload, zmq::recv_flags::dontwait)) {
        Handle(payload.to_string());
      }
    }
    if (!reconciled && std::chrono::steady_clock::now() >= reconcile_at) {
      reconciled = true;
      for (DeployedModel* m : models_) {
        if (!FollowsRef(m->options().ref)) continue;
        auto v = resolve_(m->options().registry_model, m->options().ref);
        if (v.ok() && std::to_string(*v) != m->version()) Reload(m, *v);
      }
    }
  }
}

void Reloader::Handle(const std::string& payload) {
  auto event = msgpack::Parse(payload, 8);
  if (!event.ok() || !event->is_object()) {
    spdlog::warn("registry feed: an undecodable event ({} bytes)", payload.size());
    return;
  }
  ++events_;
  const json& e = *event;
  const std::string type = e.value("type", "");
  const std::string model = e.value("model", "");
  const int64_t version = e.value("version", int64_t{0});
  for (DeployedModel* m : models_) {
    const DeploymentOptions& o = m->options();
    if (o.registry_model != model || !FollowsRef(o.ref)) continue;
    const bool moved = type == "alias_moved" && e.value("alias", "") == o.ref;
    const bool newest = type == "version_saved" && o.ref == "latest";
    if (type == "alias_removed" && e.value("alias", "") == o.ref) {
      spdlog::warn("{}: alias {} was removed; still serving version {}", o.name, o.ref, m->version());
    }
    if ((moved || newest) && version > 0 && std::to_string(version) != m->version()) Reload(m, version);
  }
}

void Reloader::Reload(DeployedModel* m, int64_t version) {
  const DeploymentOptions& o = m->options();
  auto loaded = load_(o.registry_model, "v" + std::to_string(version));
  if (loaded.ok() && loaded->row_size != o.row_size) {
    loaded = Status::InvalidArgument("it takes rows of " + std::to_string(loaded->row_size) + " values, this deployment " +
                                     std::to_string(o.row_size) + " (deploy it anew)");
  }
  if (!loaded.ok()) {
    ++failures_;
    spdlog::error("{}: cannot reload {}@v{}: {}; still serving version {}", o.name, o.registry_model, version,
                  loaded.status().ToString(), m->version());
    return;
  }
  const std::string previous = m->Install(std::move(loaded->model), std::move(loaded->metadata), std::move(loaded->reference));
  ++reloads_;
  spdlog::info("{}: {}@{} moved: now serving version {} (was {})", o.name, o.registry_model, o.ref, version,
               previous);
  if (on_installed_) on_installed_();
}

}  // namespace gantry::serving
