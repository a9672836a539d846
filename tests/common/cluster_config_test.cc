// configs/cluster.yaml: defaults, hosts and GPU slots, launcher options, and
// errors that name the field.
#include "common/cluster_config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/config.h"
#include "tests/support/test_support.h"

namespace gantry {
namespace {

Result<ClusterConfig> Parse(const std::string& yaml, int cpus = 8, int gpus = 0) {
  auto j = YamlToJson(yaml);
  if (!j.ok()) return j.status();
  return ClusterConfig::Parse(*j, cpus, gpus);
}

TEST(ClusterConfig, EmptyFileIsTheEmbeddedCluster) {
  auto c = Parse("", 4, 2);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->coordinator_bind, "tcp://127.0.0.1:7600");
  EXPECT_EQ(c->monitor_http, "127.0.0.1:8600");
  EXPECT_EQ(c->launcher.kind, "local");
  ASSERT_EQ(c->hosts.size(), 1u);
  EXPECT_EQ(c->hosts[0].cpus, 4) << "detected cores";
  EXPECT_EQ(c->hosts[0].gpus, (std::vector<int>{0, 1})) << "detected GPUs";
  EXPECT_EQ(c->TotalGpus(), 2);
}

TEST(ClusterConfig, HostsWithGpuSlotsAndLauncherOptions) {
  auto c = Parse(R"(
auth: curve
coordinator: {bind: "tcp://10.0.0.1:7600"}
launcher: {kind: hosts, rsh_agent: /usr/local/bin/netns-rsh, mpirun_args: [--mca, btl, "tcp,self"]}
hosts:
  - {name: node1, cpus: 16, gpus: 2}
  - {name: node2, cpus: 8, gpus: [1, 3]}
  - {name: node3, cpus: 4}
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->TotalCpus(), 28);
  EXPECT_EQ(c->TotalGpus(), 4);
  EXPECT_EQ(c->hosts[1].gpus, (std::vector<int>{1, 3}));
  EXPECT_TRUE(c->hosts[2].gpus.empty()) << "a remote host without gpus has none";
  EXPECT_EQ(c->launcher.mpirun_args.size(), 3u);
  // ToJson reads back to the same config.
  auto again = ClusterConfig::Parse(c->ToJson(), 1, 0);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->ToJson(), c->ToJson());
}

TEST(ClusterConfig, SchedulerPolicy) {
  auto c = Parse("");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->scheduler.backfill);
  EXPECT_FALSE(c->scheduler.preemption) << "opt-in";
  EXPECT_EQ(c->scheduler.preempt_grace_seconds, 300);
  c = Parse("scheduler: {backfill: false, preemption: true, preempt_grace_seconds: 60}\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->scheduler.backfill);
  EXPECT_TRUE(c->scheduler.preemption);
  EXPECT_EQ(c->scheduler.preempt_grace_seconds, 60);
  EXPECT_EQ(c->ToJson()["scheduler"]["preempt_grace_seconds"], 60);
  c = Parse("scheduler: {preempt_grace_seconds: -1}\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("scheduler.preempt_grace_seconds must be >= 0"), std::string::npos)
      << c.status().message();
  c = Parse("scheduler: {preemptoin: true}\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("scheduler.preemptoin"), std::string::npos) << c.status().message();
}

TEST(ClusterConfig, MonitorDriftWatch) {
  auto c = Parse("");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->drift_watch.dir.empty()) << "off by default";
  c = Parse("monitor: {drift_watch: {dir: /data/incoming, reference: fashion@production, interval_seconds: 2.5}}\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->drift_watch.dir, "/data/incoming");
  EXPECT_EQ(c->drift_watch.reference, "fashion@production");
  EXPECT_EQ(c->drift_watch.interval_seconds, 2.5);
  auto again = ClusterConfig::Parse(c->ToJson(), 1, 0);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->drift_watch.reference, "fashion@production");
  for (const auto& [yaml, field] : std::vector<std::pair<std::string, std::string>>{
           {"monitor: {drift_watch: {dir: /d}}", "monitor.drift_watch.reference"},
           {"monitor: {drift_watch: {reference: m@latest}}", "monitor.drift_watch.dir"},
           {"monitor: {drift_watch: {dir: /d, reference: m@v1, interval_seconds: 0}}",
            "monitor.drift_watch.interval_seconds"},
           {"monitor: {drift_watch: {dir: /d, reference: m@v1, intervall: 3}}", "monitor.drift_watch.intervall"}}) {
    auto r = Parse(yaml);
    ASSERT_FALSE(r.ok()) << yaml;
    EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status().ToString();
  }
}

TEST(ClusterConfig, MistakesNameTheField) {
  struct Case {
    const char* yaml;
    const char* want;
  };
  const Case cases[] = {
      {"launcher: {kind: pbs}", "cluster config: launcher.kind must be local, hosts or slurm"},
      {"launcher: {kind: hosts}", "hosts is required with launcher.kind: hosts"},
      {"launcher: {kind: hosts}\nhosts: [{name: a}]", "hosts[0].cpus is required for a remote host"},
      {"hosts: [{name: a, cpus: 1}, {name: b, cpus: 1}]", "launcher.kind local runs on this host only"},
      {"launcher: {kind: hosts}\nhosts: [{name: a, cpus: 1}, {name: a, cpus: 2}]", "hosts[1].name repeats host a"},
      {"hosts: [{name: a, gpus: -1}]", "hosts[0].gpus must be >= 0 (got -1)"},
      {"hosts: [{name: a, gpus: [0, 0]}]", "hosts[0].gpus must list distinct device indices"},
      {"hosts: [{name: a, cpu: 3}]", "unknown field hosts[0].cpu"},
      {"storage: {bind: 'http://x:1'}", "storage.bind must be tcp://HOST:PORT"},
      {"monitor: {http: '127.0.0.1:99999'}", "monitor.http port 99999 is above 65535"},
      {"coordinator: {bind: 'tcp://0.0.0.0:7600'}", "coordinator.bind binds beyond loopback (0.0.0.0): set auth: curve"},
      {"auth: kerberos", "auth must be none or curve"},
      {"launcher: {partition: gpu}", "launcher.partition is only meaningful with kind: slurm"},
      {"launcher: {mpirun_args: [1]}", "launcher.mpirun_args must be a list of strings"},
  };
  for (const Case& c : cases) {
    auto r = Parse(c.yaml);
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_NE(r.status().message().find(c.want), std::string::npos)
        << "want: " << c.want << "\ngot:  " << r.status().message();
  }
}

TEST(ClusterConfig, SlurmNeedsNoHostsAndTheShippedFileLoads) {
  auto c = Parse("launcher: {kind: slurm, partition: debug, srun_args: [--mpi=pmix]}");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->launcher.partition, "debug");
  auto shipped = ClusterConfig::Load(std::string(GANTRY_TEST_SOURCE_DIR) + "/configs/cluster.yaml");
  ASSERT_TRUE(shipped.ok()) << shipped.status().ToString();
  EXPECT_EQ(shipped->launcher.kind, "local");
}

TEST(ClusterConfig, GpusAreDetectedFromDeviceNodes) {
  testing::TempDir dev;
  for (const char* name : {"nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "null"}) {
    std::ofstream(dev.File(name)) << "";
  }
  EXPECT_EQ(DetectGpus(dev.path()), 2);
  EXPECT_EQ(DetectGpus(dev.File("absent")), 0);
  EXPECT_GE(DetectCpus(), 1);
}

}  // namespace
}  // namespace gantry
