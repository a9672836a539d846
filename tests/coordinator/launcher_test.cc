// LocalMpiLauncher: its command line, and a real process group started
// through it. A shell script written by each test stands in for mpirun: it
// records its arguments, starts a "rank" in its own process group (as mpirun
// does with ranks that share its group), traps SIGTERM and SIGUSR1, and
// writes "<who> <signal>" lines to a file before exiting with a known code.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/exit_codes.h"
#include "common/process.h"
#include "coordinator/launcher.h"
#include "coordinator/mpi_launch.h"
#include "tests/support/test_support.h"

namespace gantry::coordinator {
namespace {

TEST(LocalMpiLauncher, CommandLineCarriesJobAndEndpoints) {
  LocalMpiLauncher l({"mpirun", "/opt/gantry/bin/gantry-worker", {"--mca", "btl", "self,vader"}});
  LaunchRequest r;
  r.job_id = "j-1";
  r.attempt = 3;
  r.workers = 4;
  r.spec_path = "/d/jobs/j-1/spec.json";
  r.log_dir = "/d/jobs/j-1/attempt-3";
  r.storage_endpoint = "tcp://127.0.0.1:7601";
  r.monitor_endpoint = "tcp://127.0.0.1:7602";
  auto argv = l.CommandLine(r);
  auto has = [&](const std::vector<std::string>& seq) {
    return std::search(argv.begin(), argv.end(), seq.begin(), seq.end()) != argv.end();
  };
  EXPECT_EQ(argv[0], "mpirun");
  EXPECT_TRUE(has({"-np", "4"}));
  EXPECT_TRUE(has({"--oversubscribe"}));
  EXPECT_TRUE(has({"--mca", "btl", "self,vader"}));
  EXPECT_TRUE(has({"/opt/gantry/bin/gantry-worker", "--job-id", "j-1", "--attempt", "3"}));
  EXPECT_TRUE(has({"--storage", "tcp://127.0.0.1:7601", "--monitor", "tcp://127.0.0.1:7602"}));
  EXPECT_TRUE(has({"--log-dir", "/d/jobs/j-1/attempt-3"}));
  EXPECT_EQ(has({"--allow-run-as-root"}), ::geteuid() == 0);
}

using gantry::testing::TempDir;
using gantry::testing::WaitFor;

// A cuda job: every rank runs under the wrapper that picks its own entry of
// the per-rank device lists as CUDA_VISIBLE_DEVICES (run here without mpirun,
// the rank given as OpenMPI gives it).
// Ranks get malloc's huge pages unless the launching environment decides
// glibc.malloc.hugetlb itself; other tunables are kept.
TEST(GlibcTunables, AppendsASettingUnlessItsNameIsAlreadySet) {
  EXPECT_EQ(WithGlibcTunable(nullptr, kServeMallocCache), "glibc.malloc.tcache_count=256");
  EXPECT_EQ(WithGlibcTunable("", kServeMallocCache), "glibc.malloc.tcache_count=256");
  EXPECT_EQ(WithGlibcTunable("glibc.malloc.hugetlb=1", kServeMallocCache),
            "glibc.malloc.hugetlb=1:glibc.malloc.tcache_count=256");
  EXPECT_EQ(WithGlibcTunable("glibc.malloc.tcache_count=7", kServeMallocCache), "glibc.malloc.tcache_count=7");
}

TEST(LocalMpiLauncher, RanksGetHugePagesUnlessTheEnvironmentSaysOtherwise) {
  const char* saved = std::getenv("GLIBC_TUNABLES");
  const std::string before = saved == nullptr ? "" : saved;
  ::unsetenv("GLIBC_TUNABLES");
  EXPECT_EQ(RankGlibcTunables(), "glibc.malloc.hugetlb=1");
  EXPECT_EQ(MpirunEnv(1).at("GLIBC_TUNABLES"), "glibc.malloc.hugetlb=1");
  ::setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2", 1);
  EXPECT_EQ(RankGlibcTunables(), "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1");
  ::setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0", 1);
  EXPECT_EQ(RankGlibcTunables(), "glibc.malloc.hugetlb=0");
  if (saved == nullptr) {
    ::unsetenv("GLIBC_TUNABLES");
  } else {
    ::setenv("GLIBC_TUNABLES", before.c_str(), 1);
  }
}

TEST(LocalMpiLauncher, EachRankGetsItsOwnCudaVisibleDevices) {
  LocalMpiLauncher l({"mpirun", "/opt/gantry/bin/gantry-worker", {}});
  LaunchRequest r;
  r.job_id = "j-1";
  r.workers = 3;
  r.gpus = {"0", "2,3", "5"};
  auto argv = l.CommandLine(r);
  auto at = std::find(argv.begin(), argv.end(), "GANTRY_RANK_GPUS=0;2,3;5");
  ASSERT_NE(at, argv.end());
  EXPECT_EQ(*(at - 1), "-x");
  auto sh = std::find(argv.begin(), argv.end(), "/bin/sh");
  ASSERT_NE(sh, argv.end());
  ASSERT_LT(sh + 4, argv.end());
  EXPECT_EQ(*(sh + 2), kRankDevicesScript);
  EXPECT_EQ(*(sh + 4), "/opt/gantry/bin/gantry-worker") << "the wrapper execs the worker";

  TempDir tmp;
  for (int rank = 0; rank < 3; ++rank) {
    SpawnOptions o;
    o.argv = {"/bin/sh", "-c", kRankDevicesScript, "gantry-rank", "/bin/sh", "-c", "printf '%s' \"$CUDA_VISIBLE_DEVICES\""};
    o.env = {{"GANTRY_RANK_GPUS", "0;2,3;5"}, {"OMPI_COMM_WORLD_RANK", std::to_string(rank)}};
    o.stdout_path = tmp.path() + "/rank-" + std::to_string(rank);
    auto child = ChildProcess::Spawn(o);
    ASSERT_TRUE(child.ok()) << child.status().ToString();
    EXPECT_TRUE(child->Wait().ok());
    std::ifstream in(o.stdout_path);
    std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(got, std::vector<std::string>({"0", "2,3", "5"})[rank]) << "rank " << rank;
  }
}

TEST(LocalMpiLauncher, CpuJobsRunTheWorkerDirectly) {
  LocalMpiLauncher l({"mpirun", "/opt/gantry/bin/gantry-worker", {}});
  LaunchRequest r;
  r.job_id = "j-1";
  auto argv = l.CommandLine(r);
  EXPECT_EQ(std::find(argv.begin(), argv.end(), "/bin/sh"), argv.end());
  for (const auto& a : argv) EXPECT_EQ(a.find("GANTRY_RANK_GPUS"), std::string::npos);
}

constexpr int kStoppedExit = 3;  // the stand-in's exit code on SIGTERM

// The stand-in mpirun. It and its rank append "launcher TERM", "rank USR1",
// ... to $dir/signals; the rank exits 0 on either signal, the launcher
// waits for it, then exits kStoppedExit on SIGTERM and kExitPreempted on
// SIGUSR1. Once their traps are set, $dir/ready holds "<launcher pid>
// <rank pid>" and $dir/rank.ready exists.
const char* kStandIn = R"sh(#!/bin/sh
dir="$(dirname "$0")"
echo "$@" > "$dir/argv"
trap 'echo "launcher TERM" >> "$dir/signals"; wait; exit 3' TERM
trap 'echo "launcher USR1" >> "$dir/signals"; wait; exit 75' USR1
(
  trap 'echo "rank TERM" >> "$dir/signals"; exit 0' TERM
  trap 'echo "rank USR1" >> "$dir/signals"; exit 0' USR1
  sleep 600 &
  touch "$dir/rank.ready"
  wait
) &
echo "$$ $!" > "$dir/ready.tmp"
mv "$dir/ready.tmp" "$dir/ready"
while :; do wait; sleep 1; done
)sh";

// A stand-in that ignores SIGTERM and SIGUSR1 and starts a rank in a
// session of its own (as OpenMPI does): only Kill() can end it all.
// $dir/ready holds "<launcher pid> <rank pid>" (and $dir/rank.ready exists).
const char* kStubborn = R"sh(#!/bin/sh
dir="$(dirname "$0")"
trap '' TERM USR1
setsid sleep 600 &
touch "$dir/rank.ready"
echo "$$ $!" > "$dir/ready.tmp"
mv "$dir/ready.tmp" "$dir/ready"
while :; do wait; done
)sh";

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class LocalLaunchTest : public ::testing::Test {
 protected:
  // Writes `script` as the stand-in mpirun and starts it through the launcher.
  std::unique_ptr<Launch> Start(const char* script, const std::string& job_id) {
    const std::string path = dir_.path() + "/mpirun";
    std::ofstream(path) << script;
    EXPECT_EQ(::chmod(path.c_str(), 0755), 0);
    LocalMpiLauncher launcher({path, "/opt/gantry/bin/gantry-worker", {}});
    LaunchRequest r;
    r.job_id = job_id;
    r.attempt = 1;
    r.workers = 2;
    r.log_dir = dir_.path() + "/logs";
    auto launch = launcher.Start(r);
    EXPECT_TRUE(launch.ok()) << launch.status().ToString();
    return launch.ok() ? std::move(launch).value() : nullptr;
  }
  // Waits for the stand-in's ready files: {launcher pid, rank pid}.
  std::pair<pid_t, pid_t> Ready() {
    const std::string path = dir_.path() + "/ready";
    const std::string rank_ready = dir_.path() + "/rank.ready";
    EXPECT_TRUE(WaitFor([&] { return !Slurp(path).empty() && ::access(rank_ready.c_str(), F_OK) == 0; },
                        std::chrono::seconds(10)))
        << "the stand-in never got ready; its output: " << Slurp(dir_.path() + "/logs/launcher.log");
    std::istringstream in(Slurp(path));
    pid_t launcher = -1, rank = -1;
    in >> launcher >> rank;
    return {launcher, rank};
  }
  // Polls the launch until it ends (at most 10 s).
  static std::optional<ExitInfo> AwaitExit(Launch& launch) {
    std::optional<ExitInfo> e;
    WaitFor([&] { return (e = launch.Poll()).has_value(); }, std::chrono::seconds(10));
    return e;
  }
  std::string Signals() const { return Slurp(dir_.path() + "/signals"); }

  TempDir dir_;
};

TEST_F(LocalLaunchTest, StartRunsTheCommandLineInAProcessGroupOfItsOwn) {
  auto launch = Start(kStandIn, "j-start");
  ASSERT_NE(launch, nullptr);
  auto [launcher, rank] = Ready();
  // The exit-status wrapper leads the attempt's group; mpirun runs under it.
  EXPECT_EQ(::getpgid(launch->pid()), launch->pid()) << "the attempt has a process group of its own";
  EXPECT_NE(launcher, launch->pid());
  EXPECT_EQ(::getpgid(launcher), launch->pid()) << "mpirun is in the attempt's group";
  EXPECT_EQ(::getpgid(rank), launch->pid()) << "the rank is in the attempt's group";
  EXPECT_NE(::getpgid(0), launch->pid());
  const std::string argv = Slurp(dir_.path() + "/argv");
  EXPECT_NE(argv.find("-np 2"), std::string::npos) << argv;
  EXPECT_NE(argv.find("/opt/gantry/bin/gantry-worker --job-id j-start --attempt 1"), std::string::npos) << argv;
  EXPECT_FALSE(launch->Poll().has_value()) << "still running";
  ExitInfo e = launch->Kill();
  EXPECT_EQ(e.signal, SIGKILL);
  EXPECT_FALSE(GroupAlive(launch->pid()));
}

TEST_F(LocalLaunchTest, RequestStopSendsSigtermToTheWholeGroup) {
  auto launch = Start(kStandIn, "j-stop");
  ASSERT_NE(launch, nullptr);
  auto [launcher, rank] = Ready();
  launch->RequestStop();
  auto e = AwaitExit(*launch);
  ASSERT_TRUE(e.has_value()) << "the stand-in did not exit on SIGTERM";
  EXPECT_EQ(e->signal, 0) << e->ToString();
  EXPECT_EQ(e->exit_code, kStoppedExit) << e->ToString();
  EXPECT_TRUE(WaitFor([&] { return Signals().find("rank TERM") != std::string::npos; })) << Signals();
  EXPECT_NE(Signals().find("launcher TERM"), std::string::npos) << Signals();
  EXPECT_EQ(Signals().find("USR1"), std::string::npos) << Signals();
  EXPECT_TRUE(WaitFor([&] { return !GroupAlive(launcher); })) << "a member of the group outlived the stop";
  EXPECT_FALSE(ProcessAlive(rank));
}

TEST_F(LocalLaunchTest, RequestPreemptSendsSigusr1ToTheWholeGroup) {
  auto launch = Start(kStandIn, "j-preempt");
  ASSERT_NE(launch, nullptr);
  auto [launcher, rank] = Ready();
  launch->RequestPreempt();
  auto e = AwaitExit(*launch);
  ASSERT_TRUE(e.has_value()) << "the stand-in did not exit on SIGUSR1";
  EXPECT_EQ(e->signal, 0) << e->ToString();
  EXPECT_EQ(e->exit_code, kExitPreempted) << e->ToString();
  EXPECT_TRUE(WaitFor([&] { return Signals().find("rank USR1") != std::string::npos; })) << Signals();
  EXPECT_NE(Signals().find("launcher USR1"), std::string::npos) << Signals();
  EXPECT_EQ(Signals().find("TERM"), std::string::npos) << Signals();
  EXPECT_TRUE(WaitFor([&] { return !GroupAlive(launcher); }));
  EXPECT_FALSE(ProcessAlive(rank));
}

// Kill() ends what ignores every polite signal, including a rank that left
// mpirun's process group.
TEST_F(LocalLaunchTest, KillEndsTheGroupAndRanksInOtherGroups) {
  auto launch = Start(kStubborn, "j-kill");
  ASSERT_NE(launch, nullptr);
  auto [launcher, rank] = Ready();
  ASSERT_TRUE(ProcessAlive(rank));
  // setsid(2) runs in the rank just after the fork that $! names.
  ASSERT_TRUE(WaitFor([&] { return ::getpgid(rank) == rank; })) << "the rank runs in a session of its own";
  launch->RequestStop();
  launch->RequestPreempt();
  EXPECT_FALSE(launch->Poll().has_value()) << "the stand-in ignores SIGTERM and SIGUSR1";
  ExitInfo e = launch->Kill();
  EXPECT_EQ(e.signal, SIGKILL) << e.ToString();
  EXPECT_FALSE(GroupAlive(launcher)) << "Kill() returns once the group is gone";
  // The rank was SIGKILLed too; init reaps it a moment later.
  EXPECT_TRUE(WaitFor([&] { return !ProcessAlive(rank); })) << "rank " << rank << " survived Kill()";
  if (ProcessAlive(rank)) ::kill(rank, SIGKILL);  // leave nothing behind
  ASSERT_TRUE(launch->Poll().has_value());
  EXPECT_EQ(launch->Poll()->signal, SIGKILL);
}

TEST_F(LocalLaunchTest, AnExitOfItsOwnIsReportedWithItsCode) {
  auto launch = Start("#!/bin/sh\nexit 7\n", "j-exit");
  ASSERT_NE(launch, nullptr);
  auto e = AwaitExit(*launch);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->exit_code, 7) << e->ToString();
  EXPECT_FALSE(e->ok());
}

// A stand-in for mpirun that runs until the file $GANTRY_TEST_GO exists and
// then exits 3; SIGTERM (forwarded to the group) makes it exit 7.
std::string FakeMpirun(const std::string& dir) {
  std::filesystem::create_directories(dir);
  std::string path = dir + "/fake-mpirun";
  std::ofstream(path) << "#!/bin/sh\ntrap 'exit 7' TERM\n"
                         "while [ ! -f \"$GANTRY_TEST_GO\" ]; do sleep 0.02; done\nexit 3\n";
  ::chmod(path.c_str(), 0755);
  ::setenv("GANTRY_TEST_GO", (dir + "/go").c_str(), 1);
  return path;
}

std::optional<ExitInfo> PollUntilEnded(Launch& launch) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::optional<ExitInfo> e;
  while (!e && std::chrono::steady_clock::now() < deadline) {
    e = launch.Poll();
    if (!e) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return e;
}

TEST(LocalMpiLauncher, ReadoptsAGroupItDidNotStartAndReadsItsExitFile) {
  std::string dir = ::testing::TempDir() + "gantry-readopt-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  LocalMpiLauncher l({FakeMpirun(dir), "/bin/true", {}});
  LaunchRequest r;
  r.job_id = "j-readopt";
  r.attempt = 1;
  r.log_dir = dir + "/attempt-1";
  auto launch = l.Start(r);
  ASSERT_TRUE(launch.ok()) << launch.status().ToString();
  int pid = (*launch)->pid(), pgid = (*launch)->pgid();
  EXPECT_EQ(pid, pgid) << "the attempt leads its own process group";
  // The coordinator "dies": its Launch goes without killing anything.
  (*launch)->Abandon();
  launch->reset();
  ASSERT_TRUE(GroupAlive(pgid));

  LocalMpiLauncher restarted({"mpirun", "/bin/true", {}});
  EXPECT_EQ(restarted.Adopt({"j-other", 1, pid, pgid, r.log_dir}).status().code(), StatusCode::kNotFound)
      << "a group that runs another job's attempt is not adopted";
  auto adopted = restarted.Adopt({r.job_id, 1, pid, pgid, r.log_dir});
  ASSERT_TRUE(adopted.ok()) << adopted.status().ToString();
  EXPECT_FALSE((*adopted)->Poll().has_value()) << "still running";
  EXPECT_FALSE(ReadExitStatus(r.log_dir).has_value());
  std::ofstream(dir + "/go") << "";
  auto e = PollUntilEnded(**adopted);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->exit_code, 3);
  EXPECT_EQ(e->signal, 0);
  ASSERT_TRUE(ReadExitStatus(r.log_dir).has_value());
  EXPECT_EQ(ReadExitStatus(r.log_dir)->exit_code, 3);
  // Poll() SIGKILLs what is left of the group; once that landed, nothing is adoptable.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (restarted.Adopt({r.job_id, 1, pid, pgid, r.log_dir}).ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(restarted.Adopt({r.job_id, 1, pid, pgid, r.log_dir}).ok()) << "nothing of it is alive any more";
  std::filesystem::remove_all(dir);
}

TEST(LocalMpiLauncher, WrapperOutlivesTheSignalsMeantForMpirunAndRecordsTheExit) {
  std::string dir = ::testing::TempDir() + "gantry-wrapper-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  LocalMpiLauncher l({FakeMpirun(dir), "/bin/true", {}});
  LaunchRequest r;
  r.job_id = "j-wrap";
  r.attempt = 1;
  r.log_dir = dir + "/attempt-1";
  auto launch = l.Start(r);
  ASSERT_TRUE(launch.ok()) << launch.status().ToString();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let the fake mpirun install its trap
  (*launch)->RequestStop();  // SIGTERM to the group
  auto e = PollUntilEnded(**launch);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->exit_code, 7) << e->ToString();
  ASSERT_TRUE(ReadExitStatus(r.log_dir).has_value()) << "the wrapper survived SIGTERM and wrote the exit";
  EXPECT_EQ(ReadExitStatus(r.log_dir)->exit_code, 7);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gantry::coordinator
