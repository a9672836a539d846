// In-test checkpoint stores: FakeStore (a CheckpointStore in memory, for
// in-process trainer tests) and FakeStorageServer (the storage service's
// save_checkpoint / list_versions / load_checkpoint over a real RpcServer on
// a thread, for gantry-worker processes).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/rpc.h"
#include "worker/checkpoint_client.h"

namespace gantry::worker::testing {

// Versions of one registry, shared by both fakes: version N is bodies[N-1].
class FakeRegistry {
 public:
  // Returns the new version.
  int64_t Add(json body) {
    std::lock_guard<std::mutex> l(mu_);
    body["version"] = static_cast<int64_t>(bodies_.size() + 1);
    bodies_.push_back(std::move(body));
    return static_cast<int64_t>(bodies_.size());
  }
  std::vector<json> bodies() const {
    std::lock_guard<std::mutex> l(mu_);
    return bodies_;
  }
  size_t size() const {
    std::lock_guard<std::mutex> l(mu_);
    return bodies_.size();
  }
  json ListVersions() const {
    std::lock_guard<std::mutex> l(mu_);
    json v = json::array();
    for (const auto& b : bodies_) v.push_back({{"version", b["version"]}, {"job_id", b["job_id"]}, {"step", b["step"]}});
    return {{"versions", v}};
  }
  Result<json> Load(const std::string& ref, bool model_only) const {
    std::lock_guard<std::mutex> l(mu_);
    if (bodies_.empty()) return Status::NotFound("no versions");
    size_t index = bodies_.size() - 1;
    if (ref != "latest") {
      if (ref.size() < 2 || ref[0] != 'v') return Status::NotFound("unknown ref " + ref);
      index = std::stoul(ref.substr(1)) - 1;
      if (index >= bodies_.size()) return Status::NotFound("no " + ref);
    }
    json out = bodies_[index];
    if (model_only) {
      json kept = json::array();
      for (const auto& t : out["tensors"]) {
        std::string n = t["name"];
        if (n.rfind("optimizer/", 0) != 0 && n.rfind("trainer/", 0) != 0) kept.push_back(t);
      }
      out["tensors"] = kept;
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<json> bodies_;  // GUARDED_BY(mu_)
};

class FakeStore final : public CheckpointStore {
 public:
  explicit FakeStore(FakeRegistry& reg) : reg_(reg) {}
  bool enabled() const override { return true; }
  // Keeps the save_checkpoint body the client would send (as msgpack
  // bytes -> json, the same encoding), so tests inspect the wire format.
  Result<SavedCheckpoint> Save(const Checkpoint& checkpoint) override {
    GANTRY_ASSIGN_OR_RETURN(std::string bytes, EncodeCheckpoint(checkpoint));
    GANTRY_ASSIGN_OR_RETURN(json body, ParseMsgpack(bytes));
    body.erase("version");
    if (on_save) {
      Status st = on_save(body);
      if (!st.ok()) return st;
    }
    return SavedCheckpoint{body["model"], reg_.Add(std::move(body))};
  }
  Result<std::optional<Checkpoint>> LoadLatestOfJob(const std::string&, const std::string& job_id) override {
    auto all = reg_.bodies();
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
      if ((*it)["job_id"] == job_id) {
        GANTRY_ASSIGN_OR_RETURN(Checkpoint c, CheckpointFromReply(*it));
        return std::optional<Checkpoint>(std::move(c));
      }
    }
    return std::optional<Checkpoint>();
  }
  Result<Checkpoint> LoadRef(const std::string&, const std::string& ref, bool model_only) override {
    GANTRY_ASSIGN_OR_RETURN(json reply, reg_.Load(ref, model_only));
    return CheckpointFromReply(reply);
  }
  // Runs on the saving thread before a save is recorded; an error fails it.
  std::function<Status(const json&)> on_save;

 private:
  FakeRegistry& reg_;
};

// The storage service's API over a real socket, on its own thread.
class FakeStorageServer {
 public:
  explicit FakeStorageServer(zmq::context_t& ctx) : server_(ctx, Options()) {
    EXPECT_TRUE(server_.Bind().ok());
    server_.Handle("save_checkpoint", [this](const Request& req) -> Result<json> {
      if (hold_step_ >= 0 && req.body.value("step", int64_t{-1}) == hold_step_) {
        std::unique_lock<std::mutex> l(mu_);
        held_ = true;
        cv_.notify_all();
        cv_.wait(l, [&] { return released_; });
        return Status::Unavailable("fake storage: save abandoned");
      }
      return json{{"model", req.body["model"]}, {"version", registry.Add(req.body)}};
    });
    server_.Handle("list_versions", [this](const Request&) -> Result<json> {
      if (registry.size() == 0) return Status::NotFound("no versions");
      return registry.ListVersions();
    });
    server_.Handle("load_checkpoint", [this](const Request& req) -> Result<json> {
      return registry.Load(req.body.value("ref", "latest"), req.body.value("include", "all") == "model");
    });
    thread_ = std::thread([this] { (void)server_.Serve(); });
  }
  ~FakeStorageServer() {
    Release();
    server_.Stop();
    thread_.join();
  }
  std::string endpoint() const { return server_.endpoint(); }
  // The save of `step` blocks (never committing) until Release().
  void HoldSaveOf(int64_t step) { hold_step_ = step; }
  bool WaitHeld(std::chrono::seconds limit) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, limit, [&] { return held_; });
  }
  void Release() {
    std::lock_guard<std::mutex> l(mu_);
    released_ = true;
    cv_.notify_all();
  }

  FakeRegistry registry;

 private:
  static RpcServerOptions Options() {
    RpcServerOptions o;
    o.max_message_bytes = 64 << 20;
    return o;
  }
  RpcServer server_;
  std::atomic<int64_t> hold_step_{-1};
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;      // GUARDED_BY(mu_)
  bool released_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

// Float tensors of a save_checkpoint body by name (parameters only).
inline model::TensorMap Params(const json& body) {
  auto all = TensorsFromJson(body["tensors"]);
  EXPECT_TRUE(all.ok()) << all.status().ToString();
  model::TensorMap out;
  if (!all.ok()) return out;
  for (auto& [name, t] : *all) {
    if (name.find('/') == std::string::npos) out[name] = t;
  }
  return out;
}

}  // namespace gantry::worker::testing
