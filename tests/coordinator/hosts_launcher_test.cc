// HostsMpiLauncher: the mpirun command line (rank r on hosts[r], the rsh
// agent, keepalive, keys), the classification of mpirun's end from its log
// (a lost host is "node_lost" and named), the endpoint check, and a real
// process group through a stand-in mpirun that ends as mpirun does when it
// loses a host. tests/integration/hosts_e2e.sh runs real mpirun on two
// network namespaces.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/cluster_config.h"
#include "coordinator/hosts_launcher.h"
#include "tests/support/test_support.h"

namespace gantry::coordinator {
namespace {

using gantry::testing::TempDir;
using gantry::testing::WaitFor;

// What OpenMPI 4.1 printed when the orted of 10.77.0.2 was SIGKILLed
// (mpirun then exited 205).
constexpr const char* kLostDaemonLog = R"(--------------------------------------------------------------------------
ORTE has lost communication with a remote daemon.

  HNP daemon   : [[17830,0],0] on node vm
  Remote daemon: [[17830,0],1] on node 10.77.0.2

This is usually due to either a failure of the TCP network
connection to the node, or possibly an internal failure of
the daemon itself. We cannot recover from this failure, and
therefore will terminate the job.
--------------------------------------------------------------------------
)";

// What it printed in the same situation when the end of the orted's rsh
// session reached it first (mpirun exited 9): the daemon "failed to start",
// and the surviving rank names the host it lost its peer on.
constexpr const char* kDaemonGoneLog = R"(--------------------------------------------------------------------------
ORTE was unable to reliably start one or more daemons.
This usually is caused by:

* not finding the required libraries and/or binaries on
  one or more nodes. Please check your PATH and LD_LIBRARY_PATH
--------------------------------------------------------------------------
--------------------------------------------------------------------------
An MPI communication peer process has unexpectedly disconnected.  This
usually indicates a failure in the peer process (e.g., a crash or
otherwise exiting without calling MPI_FINALIZE first).

  Local host: vm
  Local PID:  31642
  Peer host:  10.77.0.2
--------------------------------------------------------------------------
)";

MpirunRecord Log(std::string text) {
  MpirunRecord rec;
  rec.launcher_log = std::move(text);
  return rec;
}

LaunchRequest Request() {
  LaunchRequest r;
  r.job_id = "j-1";
  r.attempt = 2;
  r.workers = 3;
  r.spec_path = "/d/jobs/j-1/spec.json";
  r.log_dir = "/d/jobs/j-1/attempt-2";
  r.storage_endpoint = "tcp://10.0.0.1:7601";
  r.monitor_endpoint = "tcp://10.0.0.1:7602";
  r.coordinator_endpoint = "tcp://10.0.0.1:7600";
  r.hosts = {"node2", "node1", "node1"};
  return r;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool Has(const std::vector<std::string>& argv, const std::vector<std::string>& seq) {
  return std::search(argv.begin(), argv.end(), seq.begin(), seq.end()) != argv.end();
}

TEST(HostsMpiLauncher, RankRRunsOnHostR) {
  HostsOptions o;
  o.worker_binary = "/opt/gantry/bin/gantry-worker";
  o.rsh_agent = "ssh -o BatchMode=yes";
  o.keys_dir = "/var/lib/gantry/keys";
  auto argv = HostsMpiLauncher(o).CommandLine(Request());
  EXPECT_EQ(argv[0], "mpirun");
  EXPECT_TRUE(Has(argv, {"-np", "3", "-H", "node2,node1,node1", "--mca", "rmaps", "seq"}))
      << "the sequential mapper puts rank r on the r-th host of the list";
  EXPECT_TRUE(Has(argv, {"--mca", "plm_rsh_agent", "/d/jobs/j-1/attempt-2/rsh-agent"}))
      << "the configured agent runs in a wrapper that records failed sessions";
  EXPECT_TRUE(Has(argv, {"--mca", "oob_tcp_keepalive_time", "5"}));
  EXPECT_TRUE(Has(argv, {"--mca", "oob_tcp_keepalive_intvl", "1"}));
  EXPECT_TRUE(Has(argv, {"--mca", "oob_tcp_keepalive_probes", "3"}));
  EXPECT_TRUE(Has(argv, {"-x", "GANTRY_KEYS=/var/lib/gantry/keys"}));
  EXPECT_TRUE(Has(argv, {"/opt/gantry/bin/gantry-worker", "--job-id", "j-1", "--attempt", "2"}));
  EXPECT_TRUE(Has(argv, {"--storage", "tcp://10.0.0.1:7601", "--monitor", "tcp://10.0.0.1:7602"}));
  EXPECT_TRUE(Has(argv, {"--coordinator", "tcp://10.0.0.1:7600"}));
  EXPECT_FALSE(Has(argv, {"--oversubscribe"})) << "the host list gives the exact slots";
}

TEST(HostsMpiLauncher, ClusterMpirunArgsWinOverTheDefaults) {
  HostsOptions o;
  o.worker_binary = "/w";
  o.extra_args = {"--mca", "oob_tcp_keepalive_time", "30", "--mca", "btl", "tcp,self"};
  auto argv = HostsMpiLauncher(o).CommandLine(Request());
  EXPECT_EQ(std::count(argv.begin(), argv.end(), "oob_tcp_keepalive_time"), 1);
  EXPECT_TRUE(Has(argv, {"--mca", "oob_tcp_keepalive_time", "30"}));
  EXPECT_TRUE(Has(argv, {"--mca", "btl", "tcp,self"}));
  o.extra_args = {"--mca", "plm_rsh_agent", "rsh"};
  argv = HostsMpiLauncher(o).CommandLine(Request());
  EXPECT_EQ(std::count(argv.begin(), argv.end(), "plm_rsh_agent"), 1) << "an agent in mpirun_args wins";
  for (const auto& a : argv) EXPECT_EQ(a.find("GANTRY_KEYS"), std::string::npos) << "no keys without CURVE";
}

TEST(ClassifyMpirunExit, ALostDaemonIsNodeLostAndNamesTheHost) {
  ExitInfo e = ClassifyMpirunExit(ExitInfo{205, 0}, Log(kLostDaemonLog));
  EXPECT_EQ(e.failure_class, "node_lost");
  EXPECT_EQ(e.lost_hosts, (std::vector<std::string>{"10.77.0.2"}));
  EXPECT_NE(e.ToString().find("mpirun lost host 10.77.0.2"), std::string::npos) << e.ToString();
  EXPECT_NE(e.ToString().find("exit code 205"), std::string::npos) << e.ToString();
  // Killed while tearing down after the loss: still the host's fault.
  EXPECT_EQ(ClassifyMpirunExit(ExitInfo{-1, 9}, Log(kLostDaemonLog)).failure_class, "node_lost");
  // 205 with the message gone (log rotated, truncated): lost, host unknown.
  e = ClassifyMpirunExit(ExitInfo{205, 0}, Log(""));
  EXPECT_EQ(e.failure_class, "node_lost");
  EXPECT_TRUE(e.lost_hosts.empty());
}

TEST(ClassifyMpirunExit, ADaemonWhoseSessionEndedFirstIsNodeLostToo) {
  ExitInfo e = ClassifyMpirunExit(ExitInfo{9, 0}, Log(kDaemonGoneLog));
  EXPECT_EQ(e.failure_class, "node_lost") << "the ranks ran: the daemon had started";
  EXPECT_EQ(e.lost_hosts, (std::vector<std::string>{"10.77.0.2"}));
  EXPECT_NE(e.detail.find("mpirun lost host 10.77.0.2"), std::string::npos) << e.detail;
}

// The agent wrapper's record decides, whatever mpirun printed: a session
// that failed on a host where ranks had started lost that host; one on a
// host where none started never got there.
TEST(ClassifyMpirunExit, FailedSessionsNameTheHost) {
  MpirunRecord rec = Log("ORTE was unable to reliably start one or more daemons.\n");
  rec.failed_sessions = {"node2"};
  rec.hosts_ran = {"node1", "node2"};
  ExitInfo e = ClassifyMpirunExit(ExitInfo{9, 0}, rec);
  EXPECT_EQ(e.failure_class, "node_lost");
  EXPECT_EQ(e.lost_hosts, (std::vector<std::string>{"node2"}));
  rec.hosts_ran = {"node1"};
  e = ClassifyMpirunExit(ExitInfo{9, 0}, rec);
  EXPECT_EQ(e.failure_class, "node_unreachable");
  EXPECT_EQ(e.lost_hosts, (std::vector<std::string>{"node2"}));
  EXPECT_NE(e.detail.find("on host node2"), std::string::npos) << e.detail;
}

TEST(ClassifyMpirunExit, ADaemonThatNeverStartedIsNodeUnreachable) {
  ExitInfo e = ClassifyMpirunExit(ExitInfo{255, 0}, Log("ORTE was unable to reliably start one or more daemons.\n"));
  EXPECT_EQ(e.failure_class, "node_unreachable");
  EXPECT_NE(e.detail.find("rsh_agent"), std::string::npos) << e.detail;
  EXPECT_TRUE(e.lost_hosts.empty()) << "nothing names the host";
  // ssh's own complaint names it: that host is kept off the next attempt.
  e = ClassifyMpirunExit(ExitInfo{255, 0}, Log("ssh: connect to host node3 port 22: No route to host\n"
                                                "ssh: Could not resolve hostname node4: Name or service not known\n"
                                                "ORTE was unable to reliably start one or more daemons.\n"));
  EXPECT_EQ(e.failure_class, "node_unreachable");
  EXPECT_EQ(e.lost_hosts, (std::vector<std::string>{"node3", "node4"}));
  EXPECT_NE(e.detail.find("on host node3, node4"), std::string::npos) << e.detail;
}

TEST(ClassifyMpirunExit, OtherEndsAreLeftAlone) {
  EXPECT_TRUE(ClassifyMpirunExit(ExitInfo{0, 0}, Log(kLostDaemonLog)).ok()) << "a success stays one";
  ExitInfo e = ClassifyMpirunExit(ExitInfo{2, 0}, Log("mpirun noticed that process rank 1 exited on signal\n"));
  EXPECT_TRUE(e.failure_class.empty());
  EXPECT_EQ(e.exit_code, 2);
  ExitInfo known{-1, 9};
  known.failure_class = "hang";
  EXPECT_EQ(ClassifyMpirunExit(known, Log(kLostDaemonLog)).failure_class, "hang") << "a class already given stays";
}

TEST(CheckRemoteEndpoints, RefusesAddressesOtherHostsCannotReach) {
  EXPECT_TRUE(CheckRemoteEndpoints(Request()).ok());
  LaunchRequest r = Request();
  r.storage_endpoint = "tcp://127.0.0.1:7601";
  Status s = CheckRemoteEndpoints(r);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("storage endpoint tcp://127.0.0.1:7601"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("storage.bind"), std::string::npos) << s.message();
  r = Request();
  r.coordinator_endpoint = "tcp://0.0.0.0:7600";
  s = CheckRemoteEndpoints(r);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("wildcard"), std::string::npos) << s.message();
  r = Request();
  r.monitor_endpoint = "ipc:///tmp/monitor";
  EXPECT_FALSE(CheckRemoteEndpoints(r).ok());
  r = Request();
  r.storage_endpoint = "tcp://127.0.0.1:7601";
  r.hosts = {"localhost", "127.0.0.1"};
  EXPECT_TRUE(CheckRemoteEndpoints(r).ok()) << "every rank on this host";
}

TEST(HostsMpiLauncher, StartRefusesWhatMpirunCouldNotRun) {
  HostsOptions o;
  o.worker_binary = "/w";
  HostsMpiLauncher l(o);
  LaunchRequest r = Request();
  r.hosts = {"node1"};
  auto s = l.Start(r);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("1 placed ranks for 3 workers"), std::string::npos) << s.status().message();
  r = Request();
  r.hosts = {"node1", "node 2", "node3"};
  s = l.Start(r);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("\"node 2\""), std::string::npos) << s.status().message();
  EXPECT_FALSE(l.StartProcess(ProcessRequest{"serve-x", {"sleep", "1"}, {}, "/tmp", "output.log"}).ok());
}

// A stand-in mpirun that starts a "daemon" on node2 through the agent it
// is given (as mpirun does), then reports it failed to start (exit 9); the
// configured agent's session ends with 137 (its orted killed).
TEST(HostsMpiLauncher, TheAgentWrapperRecordsTheHostWhoseSessionFailed) {
  TempDir tmp;
  const std::string mpirun = tmp.File("mpirun"), agent = tmp.File("fake-ssh");
  {
    std::ofstream f(mpirun);
    f << "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = plm_rsh_agent ] && agent=$2; shift; done\n"
      << "\"$agent\" -x node2 orted --daemon-args\n"
      << "echo 'ORTE was unable to reliably start one or more daemons.' >&2\nexit 9\n";
  }
  {
    std::ofstream f(agent);
    f << "#!/bin/sh\necho \"$@\" > \"$(dirname \"$0\")/agent-args\"\nexit 137\n";
  }
  ASSERT_EQ(::chmod(mpirun.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(agent.c_str(), 0755), 0);
  HostsOptions o;
  o.mpirun = mpirun;
  o.worker_binary = "/w";
  o.rsh_agent = agent + " -o BatchMode=yes";
  HostsMpiLauncher l(o);
  LaunchRequest r = Request();
  r.log_dir = tmp.File("attempt-2");
  // Rank 0 (on node2) had started: its log exists.
  std::filesystem::create_directories(r.log_dir);
  std::ofstream(r.log_dir + "/placement.json")
      << R"({"pool":"cpu","slots_per_rank":1,"ranks":[{"host":"node2","gpus":[]},{"host":"node1","gpus":[]},)"
      << R"({"host":"node1","gpus":[]}]})";
  std::ofstream(r.log_dir + "/rank-0.log") << "started\n";
  auto launch = l.Start(r);
  ASSERT_TRUE(launch.ok()) << launch.status().ToString();
  std::optional<ExitInfo> e;
  ASSERT_TRUE(WaitFor([&] { return (e = (*launch)->Poll()).has_value(); }));
  EXPECT_EQ(Slurp(tmp.File("agent-args")), "-o BatchMode=yes -x node2 orted --daemon-args\n")
      << "the configured agent gets its own options, then mpirun's arguments";
  EXPECT_EQ(Slurp(r.log_dir + "/rsh_sessions"), "node2 137\n");
  EXPECT_EQ(e->failure_class, "node_lost");
  EXPECT_EQ(e->lost_hosts, (std::vector<std::string>{"node2"}));
}

// The attempt's exit comes classified from a real process group: a
// stand-in mpirun prints what OpenMPI prints on losing a host, exits 205.
TEST(HostsMpiLauncher, AnAttemptThatLosesAHostEndsNodeLost) {
  TempDir tmp;
  const std::string mpirun = tmp.File("mpirun");
  {
    std::ofstream f(mpirun);
    f << "#!/bin/sh\necho \"$@\" > \"$(dirname \"$0\")/argv\"\ncat <<'EOF' >&2\n" << kLostDaemonLog << "EOF\nexit 205\n";
  }
  ASSERT_EQ(::chmod(mpirun.c_str(), 0755), 0);
  HostsOptions o;
  o.mpirun = mpirun;
  o.worker_binary = "/w";
  HostsMpiLauncher l(o);
  LaunchRequest r = Request();
  r.log_dir = tmp.File("attempt-2");
  auto launch = l.Start(r);
  ASSERT_TRUE(launch.ok()) << launch.status().ToString();
  std::optional<ExitInfo> e;
  ASSERT_TRUE(WaitFor([&] { return (e = (*launch)->Poll()).has_value(); }));
  EXPECT_EQ(e->exit_code, 205);
  EXPECT_EQ(e->failure_class, "node_lost");
  EXPECT_EQ(e->lost_hosts, (std::vector<std::string>{"10.77.0.2"}));
  // A coordinator that restarts after the end reads the same from the files.
  EXPECT_EQ(ReadExitStatus(r.log_dir)->exit_code, 205);
}

TEST(HostsDeployExample, ShippedClusterConfigLoads) {
  auto c = ClusterConfig::Load(std::string(GANTRY_TEST_SOURCE_DIR) + "/deploy/hosts/cluster.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->launcher.kind, "hosts");
  EXPECT_EQ(c->launcher.rsh_agent, "ssh -x -o BatchMode=yes");
  ASSERT_EQ(c->hosts.size(), 3u);
  EXPECT_EQ(c->hosts[0].name, "node2");
  // What the coordinator would hand the workers from it is reachable.
  LaunchRequest r;
  r.storage_endpoint = c->storage_bind;
  r.monitor_endpoint = c->monitor_ingest;
  r.coordinator_endpoint = c->coordinator_bind;
  r.hosts = {"node2", "node3"};
  EXPECT_TRUE(CheckRemoteEndpoints(r).ok()) << CheckRemoteEndpoints(r).ToString();
}

}  // namespace
}  // namespace gantry::coordinator
