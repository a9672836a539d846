// The real supervisor: `gantry up --detach` on free ports, SIGKILL the
// monitor, a new monitor answers and `gantry status` counts the restart;
// `gantry down` leaves no process of the cluster.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/data_dir.h"
#include "common/process.h"
#include "common/rpc.h"
#include "tests/support/test_support.h"

namespace gantry {
namespace {

struct CliRun {
  int code = -1;
  std::string out;
};

CliRun Gantry(const std::string& data, std::vector<std::string> args, const std::string& out_file) {
  SpawnOptions so;
  so.argv = {gantry::testing::BinDir() + "/gantry", "--data-dir", data};
  so.argv.insert(so.argv.end(), args.begin(), args.end());
  std::filesystem::remove(out_file);
  so.stdout_path = out_file;
  so.merge_stderr = true;
  auto child = ChildProcess::Spawn(so);
  if (!child.ok()) return {};
  CliRun r;
  ExitInfo e = child->Wait();
  r.code = e.signal ? 128 + e.signal : e.exit_code;
  std::ifstream in(out_file);
  std::stringstream ss;
  ss << in.rdbuf();
  r.out = ss.str();
  return r;
}

TEST(SuperviseProcessTest, KilledMonitorIsRestartedAndDownLeavesNoProcess) {
  for (const char* b : {"gantry", "gantry-storage", "gantry-monitor", "gantry-coordinator", "gantry-worker"}) {
    if (!std::filesystem::exists(gantry::testing::BinDir() + "/" + b)) GTEST_SKIP() << "no " << b << " built";
  }
  gantry::testing::TempDir tmp;
  const std::string data = tmp.path() + "/data";
  const std::string out = tmp.path() + "/cli.out";
  DataDir dir(data);
  CliRun up = Gantry(data, {"up", "--detach", "--port-base", "0", "--slots", "1"}, out);
  ASSERT_EQ(up.code, 0) << up.out;

  std::vector<pid_t> pids;
  auto sup_state = [&] {
    std::ifstream in(data + "/run/supervisor.json");
    return json::parse(in, nullptr, false);
  };
  json st = sup_state();
  ASSERT_FALSE(st.is_discarded());
  pid_t sup_pid = st["pid"].get<pid_t>();
  EXPECT_TRUE(ProcessAlive(sup_pid));
  pids.push_back(sup_pid);
  for (const char* svc : {kCoordinator, kStorage, kMonitor}) {
    auto info = dir.ReadServiceInfo(svc);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    pids.push_back(info->pid);
  }
  // Idempotent: a second `up` starts nothing.
  CliRun again = Gantry(data, {"up", "--detach", "--port-base", "0"}, out);
  EXPECT_EQ(again.code, 0) << again.out;
  EXPECT_NE(again.out.find("already running"), std::string::npos) << again.out;

  auto old = dir.ReadServiceInfo(kMonitor);
  ASSERT_TRUE(old.ok());
  ASSERT_EQ(::kill(old->pid, SIGKILL), 0);

  zmq::context_t zmq;
  pid_t new_pid = 0;
  bool restarted = gantry::testing::WaitFor([&] {
    auto info = dir.ReadServiceInfo(kMonitor);
    if (!info.ok() || info->pid == old->pid) return false;
    RpcClient c(zmq, info->endpoints.at("api"), std::chrono::milliseconds(1000));
    if (!c.Call("ping").ok()) return false;
    new_pid = info->pid;
    return true;
  }, std::chrono::seconds(40));
  ASSERT_TRUE(restarted);
  pids.push_back(new_pid);
  EXPECT_EQ(old->endpoints, dir.ReadServiceInfo(kMonitor)->endpoints);  // same address as before

  json status;
  bool counted = gantry::testing::WaitFor([&] {
    CliRun s = Gantry(data, {"status", "--json"}, out);
    status = json::parse(s.out, nullptr, false);
    if (status.is_discarded()) return false;
    const json& m = status["services"]["monitor"];
    return m.value("state", "") == "up" && m.contains("supervisor") && m["supervisor"].value("restarts", 0) == 1;
  }, std::chrono::seconds(20));
  EXPECT_TRUE(counted) << status.dump(2);
  EXPECT_EQ(status["services"]["monitor"]["supervisor"].value("last_exit", ""), "killed by signal 9 (Killed)");
  EXPECT_EQ(status["services"]["storage"]["supervisor"].value("restarts", -1), 0);
  CliRun text = Gantry(data, {"status"}, out);
  EXPECT_EQ(text.code, 0) << text.out;
  EXPECT_NE(text.out.find("restarts 1"), std::string::npos) << text.out;

  CliRun down = Gantry(data, {"down", "--timeout", "20"}, out);
  EXPECT_EQ(down.code, 0) << down.out;
  EXPECT_NE(down.out.find("stopped supervisor"), std::string::npos) << down.out;
  EXPECT_TRUE(gantry::testing::WaitFor([&] {
    for (pid_t p : pids) {
      if (ProcessAlive(p) || GroupAlive(p)) return false;
    }
    return true;
  }, std::chrono::seconds(10)));
  for (pid_t p : pids) EXPECT_FALSE(ProcessAlive(p) || GroupAlive(p)) << "pid " << p << " is left";
  EXPECT_FALSE(std::filesystem::exists(data + "/run/supervisor.json"));
}

}  // namespace
}  // namespace gantry
