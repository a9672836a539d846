// Reloader: hot reload driven by the storage service's registry feed
// (storage/registry_feed.h); no polling of the registry.
//
// Protocol:
//   1. Subscribe() connects a SUB socket to the feed and subscribes to
//      "registry/<model>" for every followed model, before the initial
//      versions are loaded, so no event after that load is missed.
//   2. Start() runs one thread that waits on the socket. An event that moves
//      a followed alias (alias_moved with alias == the deployment's ref), or
//      a new version of a model followed at "latest" (version_saved), makes
//      it load that version (LoadFn: fetch, build, warm) beside the one
//      serving, then DeployedModel::Install swaps it in atomically; requests
//      in flight finish on the old version. An event naming the version
//      already served is ignored. A failed load is logged and counted; the
//      old version keeps serving.
//   3. Once, reconcile_after after Start, each followed ref is resolved
//      again through LoadFn's resolver: ZeroMQ subscriptions take effect a
//      moment after connect ("slow joiner"), and an event published in that
//      moment would otherwise be lost. This is a single catch-up, not a loop.
// Deployments pinned to a version (ref "vN" or "N") are not followed.
//
// Thread safety: Subscribe/Start/Stop from the owner thread; stats() from any.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/status.h"
#include "serving/deployed_model.h"

namespace gantry::serving {

struct LoadedServable {
  std::shared_ptr<const Servable> model;
  ModelMetadata metadata;
  size_t row_size = 0;
  std::shared_ptr<const InputReference> reference;  // may be null
};

// Loads, builds and warms `model`@`ref`.
using LoadFn = std::function<Result<LoadedServable>(const std::string& model, const std::string& ref)>;
// The version `ref` names now (for the one catch-up of step 3).
using ResolveFn = std::function<Result<int64_t>(const std::string& model, const std::string& ref)>;

// Whether a deployment following `ref` moves with the registry.
bool FollowsRef(const std::string& ref);

class Reloader {
 public:
  struct Stats {
    uint64_t events = 0;
    uint64_t reloads = 0;
    uint64_t failures = 0;
  };

  Reloader(zmq::context_t& ctx, std::string feed_endpoint, LoadFn load, ResolveFn resolve,
           std::chrono::milliseconds reconcile_after = std::chrono::milliseconds(1000));
  ~Reloader();  // Stop()

  // Step 1: the registry models to follow (before their first load).
  Status Subscribe(const std::vector<std::string>& registry_models);
  // Called on the reloader's thread after each swap (before Start).
  void OnInstalled(std::function<void()> fn) { on_installed_ = std::move(fn); }
  // Step 2: follows `models` (which must outlive the reloader, or Stop()).
  void Start(std::vector<DeployedModel*> models);
  void Stop();
  Stats stats() const;

 private:
  void Run();
  void Handle(const std::string& payload);
  void Reload(DeployedModel* m, int64_t version);

  zmq::socket_t sub_;
  std::function<void()> on_installed_;
  std::string feed_endpoint_;
  std::vector<DeployedModel*> models_;
  LoadFn load_;
  ResolveFn resolve_;
  std::chrono::milliseconds reconcile_after_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> events_{0}, reloads_{0}, failures_{0};
  std::thread thread_;
};

}  // namespace gantry::serving
