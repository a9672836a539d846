// A Launcher whose attempts end when the test says so, the coordinator's
// other stand-ins, and what the coordinator tests share to open one.
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "coordinator/coordinator.h"
#include "coordinator/launcher.h"

namespace gantry::coordinator::testing {

struct FakeAttemptState {
  std::optional<ExitInfo> exit;
  bool stop_requested = false;
  bool preempt_requested = false;
  bool killed = false;
  bool exit_on_stop = true;  // SIGTERM ends it (with signal 15)
};

class FakeLauncher final : public Launcher {
 public:
  Result<std::unique_ptr<Launch>> Start(const LaunchRequest& r) override {
    if (fail_next) {
      fail_next = false;
      return Status::NotFound("cannot run mpirun: No such file or directory");
    }
    auto state = std::make_shared<FakeAttemptState>();
    state->exit_on_stop = exit_on_stop;
    started.push_back(r);
    attempts[r.job_id] = state;
    return std::unique_ptr<Launch>(std::make_unique<FakeLaunch>(state));
  }
  Result<std::unique_ptr<Launch>> StartProcess(const ProcessRequest& r) override {
    return Status::Unavailable("the fake launcher runs no processes (" + r.key + ")");
  }
  // Re-adopts the attempts of the jobs in `alive` (a live process group).
  Result<std::unique_ptr<Launch>> Adopt(const AdoptRequest& r) override {
    adopt_requests.push_back(r);
    if (!alive.count(r.job_id)) return Status::NotFound("attempt of job " + r.job_id + " is not running");
    auto state = std::make_shared<FakeAttemptState>();
    state->exit_on_stop = exit_on_stop;
    attempts[r.job_id] = state;
    return std::unique_ptr<Launch>(std::make_unique<FakeLaunch>(state));
  }
  void Finish(const std::string& job_id, ExitInfo e) { attempts.at(job_id)->exit = e; }
  std::set<std::string> alive;
  std::vector<AdoptRequest> adopt_requests;

  std::vector<LaunchRequest> started;
  std::map<std::string, std::shared_ptr<FakeAttemptState>> attempts;
  bool fail_next = false;
  bool exit_on_stop = true;

 private:
  class FakeLaunch final : public Launch {
   public:
    explicit FakeLaunch(std::shared_ptr<FakeAttemptState> s) : s_(std::move(s)) {}
    std::optional<ExitInfo> Poll() override { return s_->exit; }
    void RequestStop() override {
      s_->stop_requested = true;
      if (s_->exit_on_stop) s_->exit = ExitInfo{-1, 15};
    }
    void RequestPreempt() override {
      s_->preempt_requested = true;
      if (s_->exit_on_stop) s_->exit = ExitInfo{75, 0};
    }
    ExitInfo Kill() override {
      s_->killed = true;
      if (!s_->exit) s_->exit = ExitInfo{-1, 9};
      return *s_->exit;
    }
    int pid() const override { return 0; }

   private:
    std::shared_ptr<FakeAttemptState> s_;
  };
};

class FakeRetention final : public RetentionSink {
 public:
  Status Check(const JobSpec& spec) override {
    GANTRY_RETURN_IF_ERROR(CheckRetention(spec));
    return refuse ? Status::InvalidArgument("set_retention: refused by the test") : Status::Ok();
  }
  void Apply(const JobSpec& spec) override {
    json body = RetentionRequest(spec);
    if (!body.is_null()) applied.push_back(body);
  }
  std::vector<json> applied;
  bool refuse = false;
};

class RecordingSink final : public EventSink {
 public:
  void JobChanged(const Job& job, double) override {
    events.emplace_back(job.id, std::string(JobStateName(job.state)));
  }
  std::vector<std::pair<std::string, std::string>> events;
};

// A data folder the job specs' default Fashion-MNIST check accepts.
inline void WriteStandInMnist(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                        "t10k-labels-idx1-ubyte.gz"}) {
    std::ofstream(dir / f) << "x";
  }
}

// A coordinator on <root>/coordinator.db, recovered as at start.
inline Result<std::unique_ptr<Coordinator>> OpenCoordinator(const std::filesystem::path& root,
                                                            CoordinatorOptions options, Launcher& launcher,
                                                            EventSink& events, RetentionSink& retention,
                                                            const Clock& clock) {
  GANTRY_ASSIGN_OR_RETURN(JobStore store, JobStore::Open((root / "coordinator.db").string()));
  auto c = std::make_unique<Coordinator>(std::move(options), DataDir(root.string()), std::move(store), launcher,
                                         events, retention, clock);
  GANTRY_RETURN_IF_ERROR(c->Recover());
  return c;
}

}  // namespace gantry::coordinator::testing
