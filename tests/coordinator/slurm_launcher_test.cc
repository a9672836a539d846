// The slurm launcher without a Slurm: scontrol output parsed and mapped onto
// Gantry's exits and failure classes, the sbatch command and batch script,
// and a launch driven against stand-in sbatch/scontrol/scancel scripts with a
// ManualClock (polls rate-limited, queries timed out, signals sent, adoption
// checked by job name). tests/integration/slurm_e2e.sh runs a real Slurm.
#include "coordinator/slurm_launcher.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "common/cluster_config.h"
#include "common/exit_codes.h"
#include "common/fs.h"

namespace gantry::coordinator {
namespace {

// Real lines from Slurm 22.05 (`scontrol show job -o J`), trimmed of fields
// the launcher does not read.
std::string Line(const std::string& state, const std::string& exit_code, const std::string& reason = "None",
                 const std::string& nodes = "vm") {
  return "JobId=12 JobName=gantry-j1-a1 UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901759 "
         "Nice=0 Account=(null) QOS=(null) JobState=" +
         state + " Reason=" + reason + " Dependency=(null) Requeue=0 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=" +
         exit_code +
         " RunTime=00:00:01 TimeLimit=00:02:00 TimeMin=N/A SubmitTime=2026-12-02T05:09:16 Partition=gantry "
         "NodeList=" +
         nodes + " BatchHost=vm NumNodes=1 NumCPUs=2 NumTasks=2 CPUs/Task=1 Command=/tmp/a b/c.sh WorkDir=/tmp "
                 "StdOut=/tmp/out.log Power= \n";
}

SlurmJobInfo Parsed(const std::string& state, const std::string& exit_code, const std::string& reason = "None") {
  auto j = ParseScontrolJob(Line(state, exit_code, reason));
  EXPECT_TRUE(j.ok()) << j.status().ToString();
  return j.ok() ? *j : SlurmJobInfo{};
}

TEST(SlurmJobInfo, ParsesScontrolsOneLineAnswer) {
  auto j = ParseScontrolJob(Line("PENDING", "0:0", "Resources", ""));
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ(j->id, "12");
  EXPECT_EQ(j->name, "gantry-j1-a1");
  EXPECT_EQ(j->state, "PENDING");
  EXPECT_EQ(j->reason, "Resources");
  EXPECT_EQ(j->nodes, "");
  EXPECT_EQ(j->time_limit, "00:02:00");
  auto f = ParseScontrolJob(Line("FAILED", "0:11", "JobLaunchFailure"));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->exit_code, 0);
  EXPECT_EQ(f->signal, 11);
  EXPECT_EQ(f->nodes, "vm");
}

TEST(SlurmJobInfo, UnknownJobAndGarbageAreErrors) {
  auto gone = ParseScontrolJob("slurm_load_jobs error: Invalid job id specified\n");
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  auto down = ParseScontrolJob("slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n");
  EXPECT_EQ(down.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(down.status().message().find("JobId"), std::string::npos) << down.status().message();
  auto bad = ParseScontrolJob("JobId=3 JobState=FAILED ExitCode=banana");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("ExitCode"), std::string::npos);
}

TEST(SlurmJobExit, LiveStatesHaveNoExit) {
  for (const char* s : {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED"}) {
    EXPECT_FALSE(SlurmJobExit(Parsed(s, "0:0")).has_value()) << s;
  }
}

TEST(SlurmJobExit, ExitCodesAndSignals) {
  auto done = SlurmJobExit(Parsed("COMPLETED", "0:0"));
  ASSERT_TRUE(done);
  EXPECT_TRUE(done->ok());
  auto failed = SlurmJobExit(Parsed("FAILED", "3:0", "NonZeroExitCode"));
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->exit_code, 3);
  EXPECT_EQ(failed->signal, 0);
  EXPECT_EQ(failed->failure_class, "");  // the coordinator's own "exit_code"
  auto segv = SlurmJobExit(Parsed("FAILED", "0:11"));
  ASSERT_TRUE(segv);
  EXPECT_EQ(segv->signal, 11);
  // srun exits 128+N when a rank died of signal N.
  auto rank_killed = SlurmJobExit(Parsed("FAILED", "137:0"));
  ASSERT_TRUE(rank_killed);
  EXPECT_EQ(rank_killed->signal, SIGKILL);
  // Every rank checkpointed and left: the coordinator requeues on this code.
  auto preempted = SlurmJobExit(Parsed("FAILED", "75:0"));
  ASSERT_TRUE(preempted);
  EXPECT_EQ(preempted->exit_code, kExitPreempted);
  EXPECT_EQ(preempted->signal, 0);
}

TEST(SlurmJobExit, SlurmStatesBecomeFailureClasses) {
  struct Case {
    const char* state;
    const char* failure_class;
    const char* in_detail;
  } cases[] = {{"CANCELLED", "cancelled", "CANCELLED"},  {"TIMEOUT", "time_limit", "time limit 00:02:00"},
               {"DEADLINE", "time_limit", "DEADLINE"},     {"NODE_FAIL", "node_lost", "nodes vm"},
               {"BOOT_FAIL", "node_lost", "BOOT_FAIL"},    {"PREEMPTED", "preempted", "PREEMPTED"},
               {"OUT_OF_MEMORY", "out_of_memory", "OUT_OF_MEMORY"}, {"REVOKED", "slurm", "REVOKED"}};
  for (const auto& c : cases) {
    auto e = SlurmJobExit(Parsed(c.state, "0:15"));
    ASSERT_TRUE(e) << c.state;
    EXPECT_FALSE(e->ok()) << c.state;
    EXPECT_EQ(e->failure_class, c.failure_class) << c.state;
    EXPECT_NE(e->ToString().find(c.in_detail), std::string::npos) << e->ToString();
    EXPECT_NE(e->ToString().find("Slurm job 12"), std::string::npos) << e->ToString();
  }
  auto preempted = SlurmJobExit(Parsed("PREEMPTED", "0:15"));
  EXPECT_EQ(preempted->exit_code, kExitPreempted);
  EXPECT_EQ(preempted->signal, 0);
}

// A scratch folder with stand-in Slurm commands: sbatch prints a job id,
// scontrol prints <dir>/state (or "Invalid job id" when it is absent, and
// hangs while <dir>/hang exists), squeue prints <dir>/squeue; each appends
// its arguments to <dir>/calls.
class SlurmLauncherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("gantry-slurm-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ + "/bin");
    Script("sbatch", "echo \"sbatch $*\" >> '" + dir_ + "/calls'; echo '42;gantrytest'");
    Script("scontrol",
           "echo \"scontrol $*\" >> '" + dir_ + "/calls'; while [ -e '" + dir_ +
               "/hang' ]; do sleep 0.01; done; "
               "if [ -e '" + dir_ + "/state' ]; then cat '" + dir_ + "/state'; else "
               "echo 'slurm_load_jobs error: Invalid job id specified'; exit 1; fi");
    Script("scancel", "echo \"scancel $*\" >> '" + dir_ + "/calls'");
    Script("squeue", "echo \"squeue $*\" >> '" + dir_ + "/calls'; cat '" + dir_ + "/squeue' 2>/dev/null");
    options_.sbatch = dir_ + "/bin/sbatch";
    options_.scontrol = dir_ + "/bin/scontrol";
    options_.scancel = dir_ + "/bin/scancel";
    options_.squeue = dir_ + "/bin/squeue";
    options_.worker_binary = "/opt/gantry/bin/gantry-worker";
    options_.partition = "gpu";
    options_.account = "ml";
    options_.srun_args = {"--cpu-bind=cores"};
    options_.poll_interval = std::chrono::milliseconds(1000);
    options_.command_timeout = std::chrono::milliseconds(5000);
    request_.job_id = "j1";
    request_.attempt = 1;
    request_.workers = 2;
    request_.threads_per_worker = 1;
    request_.log_dir = dir_ + "/jobs/j1/attempt-1";
    request_.spec_path = dir_ + "/jobs/j1/spec.json";
    request_.storage_endpoint = "tcp://10.0.0.1:7601";
    request_.monitor_endpoint = "tcp://10.0.0.1:7602";
    request_.coordinator_endpoint = "tcp://10.0.0.1:7600";
    ASSERT_TRUE(MakeDirs(dir_ + "/jobs/j1").ok());
    ASSERT_TRUE(WriteFileAtomic(request_.spec_path, "{\"name\": \"j1\"}").ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Script(const std::string& name, const std::string& body) {
    std::string path = dir_ + "/bin/" + name;
    ASSERT_TRUE(WriteFileAtomic(path, "#!/bin/sh\n" + body + "\n", 0755).ok());
  }
  void SetState(const std::string& state, const std::string& exit_code = "0:0") {
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/state", Line(state, exit_code)).ok());
  }
  std::string Calls() {
    auto t = ReadFile(dir_ + "/calls");
    return t.ok() ? *t : "";
  }
  int Count(const std::string& text, const std::string& what) {
    int n = 0;
    for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
    return n;
  }
  std::string LauncherLog() {
    auto t = ReadFile(request_.log_dir + "/launcher.log");
    return t.ok() ? *t : "";
  }
  // Polls (real time passes: the query is a real process) until `done`.
  template <typename F>
  bool PollUntil(Launch& l, F done, std::chrono::seconds limit = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      l.Poll();
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  std::string dir_;
  SlurmOptions options_;
  LaunchRequest request_;
  ManualClock clock_;
};

TEST_F(SlurmLauncherTest, SbatchCommandAndBatchScript) {
  SlurmLauncher launcher(options_, clock_);
  auto argv = launcher.SbatchCommand(request_, "/x/script.sh");
  auto has = [&](const std::string& a) { return std::find(argv.begin(), argv.end(), a) != argv.end(); };
  EXPECT_EQ(argv.front(), options_.sbatch);
  EXPECT_EQ(argv.back(), "/x/script.sh");
  for (const char* a : {"--parsable", "--job-name=gantry-j1-a1", "--ntasks=2", "--cpus-per-task=1", "--no-requeue",
                        "--partition=gpu", "--account=ml", "--open-mode=append"}) {
    EXPECT_TRUE(has(a)) << a;
  }
  EXPECT_TRUE(has("--output=" + request_.log_dir + "/launcher.log"));
  for (const auto& a : argv) EXPECT_NE(a.rfind("--time", 0), 0u) << "no max_runtime, no time limit: " << a;
  for (const auto& a : argv) EXPECT_NE(a.rfind("--gpus", 0), 0u) << "a cpu job asks for no GPU: " << a;

  // max_runtime 90 s: Slurm counts minutes, rounded up. 2 GPUs per rank.
  ASSERT_TRUE(WriteFileAtomic(request_.spec_path, "{\"name\": \"j1\", \"max_runtime\": 90}").ok());
  request_.gpus = {"0,1", "2,3"};
  argv = launcher.SbatchCommand(request_, "/x/script.sh");
  EXPECT_TRUE(has("--time=2"));
  EXPECT_TRUE(has("--gpus-per-task=2"));

  std::string script = launcher.BatchScript(request_);
  EXPECT_EQ(script.rfind("#!/bin/sh\n", 0), 0u);
  EXPECT_NE(script.find("export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1"), std::string::npos) << script;
  EXPECT_NE(script.find("'srun' '--mpi=pmix' '--kill-on-bad-exit=1' '--cpu-bind=cores' "
                        "'/opt/gantry/bin/gantry-worker' '--job-id' 'j1' '--attempt' '1'"),
            std::string::npos)
      << script;
  EXPECT_NE(script.find("'--coordinator' 'tcp://10.0.0.1:7600'"), std::string::npos) << script;
  EXPECT_NE(script.find("mv -f '" + request_.log_dir + "/exit_status.tmp' '" + request_.log_dir + "/exit_status'"),
            std::string::npos)
      << script;
  // Arguments are quoted for the shell, quotes included.
  request_.job_id = "it's";
  EXPECT_NE(launcher.BatchScript(request_).find("'it'\\''s'"), std::string::npos);
}

TEST_F(SlurmLauncherTest, StartPollsAtMostOncePerIntervalAndMapsTheEnd) {
  SlurmLauncher launcher(options_, clock_);
  auto launch = launcher.Start(request_);
  ASSERT_TRUE(launch.ok()) << launch.status().ToString();
  Launch& l = **launch;
  EXPECT_EQ(l.pid(), 42);  // the Slurm job id is the attempt's record
  EXPECT_EQ(l.pgid(), 0);
  EXPECT_EQ(ReadFile(request_.log_dir + "/slurm_job_id").value(), "42\n");
  EXPECT_TRUE(std::filesystem::exists(request_.log_dir + "/slurm-batch.sh"));
  EXPECT_NE(Calls().find("--job-name=gantry-j1-a1"), std::string::npos) << Calls();

  SetState("PENDING");
  ASSERT_TRUE(PollUntil(l, [&] { return LauncherLog().find("Slurm job 12 PENDING (None)") != std::string::npos; }))
      << LauncherLog();
  SetState("RUNNING");
  // Without the clock moving, no second query starts however often Poll runs.
  for (int i = 0; i < 50; ++i) EXPECT_FALSE(l.Poll().has_value());
  EXPECT_EQ(Count(Calls(), "scontrol show job -o 42"), 1) << Calls();
  clock_.Advance(std::chrono::milliseconds(1000));
  ASSERT_TRUE(PollUntil(l, [&] { return LauncherLog().find("RUNNING on vm") != std::string::npos; }))
      << LauncherLog();
  EXPECT_EQ(Count(Calls(), "scontrol show job -o 42"), 2) << Calls();

  SetState("FAILED", "3:0");
  clock_.Advance(std::chrono::milliseconds(1000));
  std::optional<ExitInfo> exit;
  ASSERT_TRUE(PollUntil(l, [&] { return (exit = l.Poll()).has_value(); }));
  EXPECT_EQ(exit->exit_code, 3);
  EXPECT_EQ(exit->signal, 0);
  // Ended: polls answer from memory, and the destructor cancels nothing.
  clock_.Advance(std::chrono::seconds(10));
  EXPECT_EQ(l.Poll()->exit_code, 3);
  launch->reset();
  EXPECT_EQ(Count(Calls(), "scancel"), 0) << Calls();
}

TEST_F(SlurmLauncherTest, StopPreemptAndKillSendScancel) {
  SlurmLauncher launcher(options_, clock_);
  auto launch = launcher.Start(request_);
  ASSERT_TRUE(launch.ok());
  Launch& l = **launch;
  SetState("RUNNING");
  ASSERT_TRUE(PollUntil(l, [&] { return LauncherLog().find("RUNNING on vm") != std::string::npos; }));
  l.RequestPreempt();  // running: the ranks get SIGTERM, checkpoint and exit 75
  ASSERT_TRUE(PollUntil(l, [&] { return Calls().find("scancel --quiet --signal=TERM 42") != std::string::npos; }))
      << Calls();
  l.RequestStop();
  ASSERT_TRUE(PollUntil(l, [&] { return Calls().find("scancel --quiet 42") != std::string::npos; })) << Calls();
  ExitInfo killed = l.Kill();  // waits for scancel
  EXPECT_EQ(killed.signal, SIGKILL);
  EXPECT_NE(Calls().find("scancel --quiet --full --signal=KILL 42"), std::string::npos) << Calls();
  EXPECT_EQ(l.Poll()->signal, SIGKILL);
  EXPECT_NE(LauncherLog().find("killed Slurm job 42"), std::string::npos) << LauncherLog();
}

TEST_F(SlurmLauncherTest, PreemptingAPendingJobCancelsItAndCountsAsPreempted) {
  SlurmLauncher launcher(options_, clock_);
  auto launch = launcher.Start(request_);
  ASSERT_TRUE(launch.ok());
  Launch& l = **launch;
  SetState("PENDING");
  ASSERT_TRUE(PollUntil(l, [&] { return LauncherLog().find("PENDING") != std::string::npos; }));
  l.RequestPreempt();
  SetState("CANCELLED", "0:15");
  std::optional<ExitInfo> exit;
  // A cancel makes the next Poll ask at once, without waiting an interval.
  ASSERT_TRUE(PollUntil(l, [&] { return (exit = l.Poll()).has_value(); }));
  ASSERT_TRUE(PollUntil(l, [&] { return Calls().find("scancel --quiet 42") != std::string::npos; })) << Calls();
  EXPECT_EQ(Count(Calls(), "--signal=TERM"), 0) << "nothing to checkpoint: " << Calls();
  EXPECT_EQ(exit->exit_code, kExitPreempted);
  EXPECT_EQ(exit->failure_class, "preempted");
}

TEST_F(SlurmLauncherTest, AHungQueryIsKilledAndAskedAgain) {
  SlurmLauncher launcher(options_, clock_);
  auto launch = launcher.Start(request_);
  ASSERT_TRUE(launch.ok());
  Launch& l = **launch;
  SetState("RUNNING");
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/hang", "").ok());
  ASSERT_TRUE(PollUntil(l, [&] { return Count(Calls(), "scontrol") == 1; }));
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(l.Poll().has_value());  // never waits for it
  clock_.Advance(options_.command_timeout);
  EXPECT_FALSE(l.Poll().has_value());  // killed; a new query starts (the interval passed too)
  std::filesystem::remove(dir_ + "/hang");
  ASSERT_TRUE(PollUntil(l, [&] { return LauncherLog().find("RUNNING on vm") != std::string::npos; }))
      << Calls() << LauncherLog();
  EXPECT_EQ(Count(Calls(), "scontrol"), 2) << Calls();
}

TEST_F(SlurmLauncherTest, AJobSlurmForgotEndsWithTheBatchScriptsRecord) {
  SlurmLauncher launcher(options_, clock_);
  auto launch = launcher.Start(request_);
  ASSERT_TRUE(launch.ok());
  ASSERT_TRUE(WriteFileAtomic(request_.log_dir + "/exit_status", "0\n").ok());
  std::optional<ExitInfo> exit;
  ASSERT_TRUE(PollUntil(**launch, [&] { return (exit = (*launch)->Poll()).has_value(); }));
  EXPECT_TRUE(exit->ok()) << exit->ToString();
}

TEST_F(SlurmLauncherTest, AdoptChecksTheJobName) {
  SlurmLauncher launcher(options_, clock_);
  ASSERT_TRUE(MakeDirs(request_.log_dir).ok());
  SetState("RUNNING");  // JobName=gantry-j1-a1
  auto adopted = launcher.Adopt(AdoptRequest{"j1", 1, 12, 0, request_.log_dir});
  ASSERT_TRUE(adopted.ok()) << adopted.status().ToString();
  EXPECT_EQ((*adopted)->pid(), 12);
  EXPECT_FALSE((*adopted)->Poll().has_value());
  (*adopted)->Abandon();

  // Another attempt's job (a reused or stale id) is not adopted.
  auto other = launcher.Adopt(AdoptRequest{"j1", 2, 12, 0, request_.log_dir});
  EXPECT_EQ(other.status().code(), StatusCode::kNotFound);
  EXPECT_NE(other.status().message().find("gantry-j1-a1"), std::string::npos) << other.status().message();

  // No id recorded in the store: the attempt's own file, then squeue by name.
  ASSERT_TRUE(WriteFileAtomic(request_.log_dir + "/slurm_job_id", "12\n").ok());
  auto from_file = launcher.Adopt(AdoptRequest{"j1", 1, 0, 0, request_.log_dir});
  ASSERT_TRUE(from_file.ok()) << from_file.status().ToString();
  EXPECT_EQ((*from_file)->pid(), 12);
  (*from_file)->Abandon();
  std::filesystem::remove(request_.log_dir + "/slurm_job_id");
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/squeue", "12\n").ok());
  auto by_name = launcher.Adopt(AdoptRequest{"j1", 1, 0, 0, request_.log_dir});
  ASSERT_TRUE(by_name.ok()) << by_name.status().ToString();
  EXPECT_NE(Calls().find("squeue --noheader --name=gantry-j1-a1"), std::string::npos) << Calls();
  (*by_name)->Abandon();

  // An ended job is adopted with its end.
  SetState("TIMEOUT", "0:15");
  auto ended = launcher.Adopt(AdoptRequest{"j1", 1, 12, 0, request_.log_dir});
  ASSERT_TRUE(ended.ok());
  ASSERT_TRUE((*ended)->Poll().has_value());
  EXPECT_EQ((*ended)->Poll()->failure_class, "time_limit");

  std::filesystem::remove(dir_ + "/state");  // Slurm forgot it
  EXPECT_EQ(launcher.Adopt(AdoptRequest{"j1", 1, 12, 0, request_.log_dir}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Count(Calls(), "scancel"), 0) << "adoption never cancels: " << Calls();
}

TEST_F(SlurmLauncherTest, SbatchFailureIsALaunchError) {
  Script("sbatch", "echo 'sbatch: error: invalid partition specified: gpu' >&2; exit 1");
  SlurmLauncher launcher(options_, clock_);
  auto launch = launcher.Start(request_);
  ASSERT_FALSE(launch.ok());
  EXPECT_NE(launch.status().message().find("invalid partition specified: gpu"), std::string::npos)
      << launch.status().message();
  EXPECT_NE(launch.status().message().find("submitting to Slurm"), std::string::npos);
  EXPECT_EQ(launcher.StartProcess(ProcessRequest{"serve-x", {"gantry-serve"}, {}, dir_, "output.log"})
                .status()
                .code(),
            StatusCode::kFailedPrecondition);
}

TEST(SlurmDeployExample, ShippedClusterConfigLoads) {
  auto c = ClusterConfig::Load(std::string(GANTRY_TEST_SOURCE_DIR) + "/deploy/slurm/cluster.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->launcher.kind, "slurm");
  EXPECT_EQ(c->launcher.partition, "gpu");
  EXPECT_EQ(c->hosts.size(), 3u);
}

}  // namespace
}  // namespace gantry::coordinator
