// Shared fixture of the gantry-worker process tests: the built binary, a
// synthetic dataset, a spec writer, and a runner that drains the metrics
// socket while it waits for the launcher.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>

#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/process.h"
#include "common/rpc.h"
#include "tests/worker/test_util.h"

namespace gantry::worker {

using std::chrono::steady_clock;

inline std::string BinDir() {
  const char* env = std::getenv("GANTRY_BIN_DIR");
#ifdef GANTRY_TEST_BIN_DIR
  return env != nullptr ? env : GANTRY_TEST_BIN_DIR;
#else
  return env != nullptr ? env : SelfDir() + "/../bin";
#endif
}

inline std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path != nullptr ? path : "");
  for (std::string dir; std::getline(ss, dir, ':');) {
    std::string p = dir + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

class WorkerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    worker_ = BinDir() + "/gantry-worker";
    mpirun_ = FindOnPath("mpirun");
    ASSERT_EQ(::access(worker_.c_str(), X_OK), 0) << "no executable " << worker_;
    testing::WriteSyntheticDataset(dir_.path(), "train", 600);
    testing::WriteSyntheticDataset(dir_.path(), "t10k", 100);
  }

  std::string WriteSpec(json overrides) {
    json spec = {{"name", "tiny"},
                 {"model", {{"builtin", "mlp"}, {"hidden", {32}}}},
                 {"data", {{"path", dir_.path()}, {"limit", 512}}},
                 {"resources", {{"workers", 2}}},
                 {"train", {{"steps", 10}, {"batch_size", 16}, {"log_every", 4}, {"threads", 1}}},
                 {"checkpoint", {{"model", "tiny-model"}, {"every_steps", 5}}}};
    if (overrides.is_object()) spec.merge_patch(overrides);
    std::string path = dir_.File("spec.json");
    std::ofstream(path) << spec.dump(2);
    return path;
  }

  std::vector<std::string> Mpirun(int np) {
    return {mpirun_, "-np", std::to_string(np), "--oversubscribe", "--bind-to", "none"};
  }

  // Starts `argv` (its own process group) with the MPI/OpenMP environment.
  ChildProcess Start(std::vector<std::string> argv) {
    SpawnOptions opts;
    opts.argv = std::move(argv);
    opts.env = {{"OMPI_ALLOW_RUN_AS_ROOT", "1"}, {"OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"},
                {"OMP_NUM_THREADS", "1"}};
    opts.stdout_path = dir_.File("launcher.log");
    auto child = ChildProcess::Spawn(opts);
    EXPECT_TRUE(child.ok()) << child.status().ToString();
    return child.ok() ? std::move(child).value() : ChildProcess();
  }

  // Runs `argv` to completion (at most `limit`), draining `pull` meanwhile.
  ExitInfo RunToEnd(std::vector<std::string> argv, zmq::socket_t* pull,
                    std::chrono::seconds limit = std::chrono::seconds(60)) {
    ChildProcess child = Start(std::move(argv));
    return WaitEnd(child, pull, limit);
  }

  ExitInfo WaitEnd(ChildProcess& child, zmq::socket_t* pull, std::chrono::seconds limit) {
    if (child.pid() <= 0) return {};
    auto deadline = steady_clock::now() + limit;
    while (steady_clock::now() < deadline) {
      if (auto exit = child.Poll()) {
        Drain(pull, std::chrono::milliseconds(0));
        return *exit;
      }
      // Waiting on the metrics socket is the pause between polls of the child.
      Drain(pull, std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "worker still running after " << limit.count() << " s";
    return child.Terminate(std::chrono::seconds(2));
  }

  void Drain(zmq::socket_t* pull, std::chrono::milliseconds wait) {
    // Without a metrics socket, waiting on an idle one paces the loop.
    if (pull == nullptr) pull = &idle_;
    zmq::pollitem_t item{pull->handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, wait);
    zmq::message_t m;
    while (pull->recv(m, zmq::recv_flags::dontwait)) {
      if (m.more()) continue;  // the ROUTER's routing id frame
      auto j = ParseMsgpack(m.to_string_view());
      ASSERT_TRUE(j.ok()) << j.status().ToString();
      metrics_.push_back(*j);
    }
  }

  std::string Logs() const {
    std::string all = "--- launcher.log\n" + Slurp(dir_.File("launcher.log"));
    for (const char* f : {"rank-0.log", "rank-1.log"}) {
      all += std::string("--- ") + f + "\n" + Slurp(dir_.File(std::string("logs/") + f));
    }
    return all;
  }

  testing::TempDir dir_;
  std::string worker_;
  std::string mpirun_;  // empty: not installed
  zmq::context_t ctx_{1};
  zmq::socket_t idle_{ctx_, zmq::socket_type::router};  // never receives anything
  std::vector<json> metrics_;
};

}  // namespace gantry::worker
