#include "coordinator/slurm_launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <thread>

#include "common/exit_codes.h"
#include "common/fs.h"
#include "common/protocol.h"

namespace gantry::coordinator {
namespace {

constexpr const char* kJobIdFile = "slurm_job_id";
constexpr const char* kBatchScript = "slurm-batch.sh";

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Appends one line to the attempt's launcher.log (which sbatch's --output
// also appends to), so `gantry logs --launcher` tells the Slurm side.
void Note(const std::string& log_dir, const std::string& line) {
  int fd = ::open((log_dir + "/launcher.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  char stamp[32] = "";
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  if (gmtime_r(&now, &tm)) std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ ", &tm);
  std::string text = std::string("gantry: ") + stamp + line + "\n";
  (void)!::write(fd, text.data(), text.size());
  ::close(fd);
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

// A Slurm command run in the background, its output (stdout and stderr) to
// `out_path` (truncated first). Poll() never blocks.
class Command {
 public:
  static Result<Command> Start(std::vector<std::string> argv, const std::string& out_path) {
    std::error_code ec;
    std::filesystem::remove(out_path, ec);
    SpawnOptions o;
    o.argv = std::move(argv);
    o.stdout_path = out_path;
    o.new_session = true;
    Command c;
    c.out_path_ = out_path;
    c.what_ = o.argv[0];
    GANTRY_ASSIGN_OR_RETURN(c.child_, ChildProcess::Spawn(o));
    return c;
  }
  // The exit and output once the command ended.
  std::optional<std::pair<ExitInfo, std::string>> Poll() {
    auto e = child_.Poll();
    if (!e) return std::nullopt;
    auto text = ReadFile(out_path_);
    return std::make_pair(*e, text.ok() ? *text : std::string());
  }
  void Kill() { child_.Terminate(std::chrono::milliseconds(0)); }
  const std::string& what() const { return what_; }

 private:
  ChildProcess child_;
  std::string out_path_;
  std::string what_;
};

// Runs a command to its end, at most `timeout` (wall clock: a real process).
Result<std::string> RunCommand(std::vector<std::string> argv, const std::string& out_path,
                               std::chrono::milliseconds timeout) {
  std::string what = argv[0];
  GANTRY_ASSIGN_OR_RETURN(Command c, Command::Start(std::move(argv), out_path));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (auto done = c.Poll()) {
      auto& [exit, text] = *done;
      if (!exit.ok()) return Status::Unavailable(what + " failed (" + exit.ToString() + "): " + Trim(text));
      return text;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      c.Kill();
      return Status::DeadlineExceeded(what + " gave no answer within " + std::to_string(timeout.count()) +
                                      " ms (is slurmctld up? `scontrol ping`)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// Key=Value pairs of scontrol's one-line output. Values hold no spaces
// except the last ones (Command=, WorkDir=, …), which are not read here.
std::map<std::string, std::string> Fields(std::string_view text) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n')) ++i;
    size_t end = text.find_first_of(" \n", i);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(i, end - i);
    if (auto eq = word.find('='); eq != std::string_view::npos) {
      out.emplace(std::string(word.substr(0, eq)), std::string(word.substr(eq + 1)));
    }
    i = end;
  }
  return out;
}

ExitInfo Failure(int code, int sig, std::string failure_class, std::string detail) {
  ExitInfo e(code, sig);
  e.failure_class = std::move(failure_class);
  e.detail = std::move(detail);
  return e;
}

// The spec's max_runtime in seconds (the resolved spec the workers read),
// 0 when it declares none.
double MaxRuntimeSeconds(const std::string& spec_path) {
  auto text = ReadFile(spec_path);
  if (!text.ok()) return 0;
  json spec = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!spec.is_object() || !spec.contains("max_runtime") || !spec["max_runtime"].is_number()) return 0;
  return spec["max_runtime"].get<double>();
}

class SlurmLaunch final : public Launch {
 public:
  SlurmLaunch(const SlurmOptions& options, const Clock& clock, int id, std::string log_dir,
              std::optional<SlurmJobInfo> known = std::nullopt)
      : options_(options), clock_(clock), id_(id), log_dir_(std::move(log_dir)), next_query_(clock.Now()) {
    if (known) Update(*known);
  }
  ~SlurmLaunch() override {
    if (!abandoned_ && !exit_) Kill();
    // A stop or preempt request still in flight finishes on its own
    // (bounded by its timeout) rather than being cut off.
    for (auto& c : signals_) {
      auto deadline = std::chrono::steady_clock::now() + options_.command_timeout;
      while (!c.Poll() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
  }

  std::optional<ExitInfo> Poll() override {
    ReapSignals();
    if (exit_) return exit_;
    auto now = clock_.Now();
    if (query_) {
      if (auto done = query_->Poll()) {
        query_.reset();
        Answer(done->first, done->second);
      } else if (now - query_started_ >= options_.command_timeout) {
        spdlog::warn("slurm job {}: scontrol gave no answer within {} ms; asking again later", id_,
                     options_.command_timeout.count());
        query_->Kill();
        query_.reset();
      }
    }
    if (!exit_ && !query_ && now >= next_query_) {
      next_query_ = now + options_.poll_interval;
      auto c = Command::Start({options_.scontrol, "show", "job", "-o", std::to_string(id_)},
                              log_dir_ + "/.slurm_state");
      if (c.ok()) {
        query_ = std::move(c).value();
        query_started_ = now;
      } else {
        spdlog::warn("slurm job {}: {}", id_, c.status().ToString());
      }
    }
    return exit_;
  }

  void RequestStop() override { Signal({"--quiet"}, /*ends_job=*/true); }

  void RequestPreempt() override {
    preempt_requested_ = true;
    // A job not (yet known to be) running has nothing to checkpoint: cancel it.
    if (state_ == "RUNNING") {
      Signal({"--quiet", "--signal=TERM"}, /*ends_job=*/false);
    } else {
      Signal({"--quiet"}, /*ends_job=*/true);
    }
  }

  ExitInfo Kill() override {
    if (exit_) return *exit_;
    const std::vector<std::vector<std::string>> rounds = {{"--full", "--signal=KILL"}, {}};
    for (const auto& args : rounds) {
      std::vector<std::string> argv = {options_.scancel, "--quiet"};
      argv.insert(argv.end(), args.begin(), args.end());
      argv.push_back(std::to_string(id_));
      auto r = RunCommand(argv, log_dir_ + "/.scancel", options_.command_timeout);
      if (!r.ok()) spdlog::warn("slurm job {}: {}", id_, r.status().ToString());
    }
    Note(log_dir_, "killed Slurm job " + std::to_string(id_) + " (scancel --signal=KILL)");
    exit_ = Failure(-1, SIGKILL, "", "Slurm job " + std::to_string(id_) + " killed by Gantry");
    return *exit_;
  }

  int pid() const override { return id_; }
  int pgid() const override { return 0; }  // no local process group
  void Abandon() override { abandoned_ = true; }

 private:
  // scancel <args> <id> in the background; its output goes to launcher.log.
  void Signal(std::vector<std::string> args, bool ends_job) {
    std::vector<std::string> argv = {options_.scancel};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(std::to_string(id_));
    std::string line;
    for (size_t i = 1; i < argv.size(); ++i) line += " " + argv[i];
    Note(log_dir_, "scancel" + line);
    auto c = Command::Start(argv, log_dir_ + "/.scancel-" + std::to_string(++signals_sent_));
    if (!c.ok()) {
      spdlog::error("slurm job {}: {}", id_, c.status().ToString());
      return;
    }
    signals_.push_back(std::move(c).value());
    if (ends_job) next_query_ = clock_.Now();  // look soon
  }

  void ReapSignals() {
    for (auto it = signals_.begin(); it != signals_.end();) {
      if (auto done = it->Poll()) {
        if (!done->first.ok()) {
          spdlog::warn("slurm job {}: scancel failed ({}): {}", id_, done->first.ToString(), Trim(done->second));
          Note(log_dir_, "scancel failed: " + Trim(done->second));
        }
        it = signals_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void Answer(const ExitInfo& exit, const std::string& text) {
    auto info = ParseScontrolJob(text);
    if (info.ok()) return Update(*info);
    if (info.status().code() == StatusCode::kNotFound) {
      // Forgotten by slurmctld (MinJobAge) before we saw it end: the
      // batch script's record says how srun ended, if it got that far.
      if (auto recorded = ReadExitStatus(log_dir_)) {
        exit_ = *recorded;
      } else {
        exit_ = Failure(-1, 0, "lost", "Slurm no longer knows job " + std::to_string(id_));
      }
      Note(log_dir_, "Slurm job " + std::to_string(id_) + " is gone: " + exit_->ToString());
      return;
    }
    // slurmctld unreachable or busy: the job is still what we last saw.
    if (++failed_queries_ == 1 || failed_queries_ % 60 == 0) {
      spdlog::warn("slurm job {}: scontrol ({}): {}", id_, exit.ToString(), Trim(text));
    }
  }

  void Update(const SlurmJobInfo& info) {
    failed_queries_ = 0;
    if (info.state != state_ || (info.state == "PENDING" && info.reason != reason_)) {
      std::string line = "Slurm job " + info.id + " " + info.state;
      if (info.state == "PENDING") line += " (" + info.reason + ")";
      if (info.state == "RUNNING") line += " on " + info.nodes;
      Note(log_dir_, line);
      state_ = info.state;
      reason_ = info.reason;
    }
    auto end = SlurmJobExit(info);
    if (!end) return;
    if (preempt_requested_ && end->failure_class == "cancelled") {
      // Cancelled while pending because Gantry preempted it.
      end = Failure(kExitPreempted, 0, "preempted", "Slurm job " + info.id + " cancelled before it started");
    }
    exit_ = *end;
    Note(log_dir_, "Slurm job " + info.id + " ended: " + exit_->ToString());
  }

  const SlurmOptions options_;
  const Clock& clock_;
  int id_;
  std::string log_dir_;
  std::string state_, reason_;
  std::optional<ExitInfo> exit_;
  std::optional<Command> query_;
  std::chrono::steady_clock::time_point query_started_;
  std::chrono::steady_clock::time_point next_query_;
  std::vector<Command> signals_;
  int signals_sent_ = 0;
  int failed_queries_ = 0;
  bool preempt_requested_ = false;
  bool abandoned_ = false;
};

}  // namespace

std::string SlurmJobName(const std::string& job_id, int attempt) {
  return "gantry-" + job_id + "-a" + std::to_string(attempt);
}

Result<SlurmJobInfo> ParseScontrolJob(std::string_view text) {
  if (text.find("Invalid job id") != std::string_view::npos) {
    return Status::NotFound("Slurm does not know this job");
  }
  auto f = Fields(text);
  for (const char* key : {"JobId", "JobState", "ExitCode"}) {
    if (!f.count(key)) {
      return Status::InvalidArgument(std::string("scontrol show job: no ") + key + " in \"" +
                                     Trim(std::string(text.substr(0, 200))) + "\"");
    }
  }
  SlurmJobInfo j;
  j.id = f["JobId"];
  j.name = f["JobName"];
  j.state = f["JobState"];
  j.reason = f.count("Reason") ? f["Reason"] : "None";
  j.nodes = f["NodeList"];
  j.time_limit = f["TimeLimit"];
  if (std::sscanf(f["ExitCode"].c_str(), "%d:%d", &j.exit_code, &j.signal) != 2) {
    return Status::InvalidArgument("scontrol show job: ExitCode is not <code>:<signal> (got \"" + f["ExitCode"] +
                                   "\")");
  }
  return j;
}

std::optional<ExitInfo> SlurmJobExit(const SlurmJobInfo& j) {
  const std::string& s = j.state;
  const std::string what = "Slurm job " + j.id + " " + s;
  if (s == "COMPLETED") return ExitInfo(0, 0);
  if (s == "FAILED") {
    if (j.signal != 0) return ExitInfo(-1, j.signal);
    // srun (and the batch script after it) exits 128+N when a task was killed by signal N.
    if (j.exit_code > 128 && j.exit_code < 128 + 65) return ExitInfo(-1, j.exit_code - 128);
    return ExitInfo(j.exit_code, 0);
  }
  if (s == "CANCELLED") return Failure(-1, j.signal ? j.signal : SIGTERM, "cancelled", what);
  if (s == "TIMEOUT" || s == "DEADLINE") {
    return Failure(-1, j.signal ? j.signal : SIGTERM, "time_limit",
                   what + " (time limit " + (j.time_limit.empty() ? "?" : j.time_limit) + ")");
  }
  if (s == "NODE_FAIL" || s == "BOOT_FAIL") {
    return Failure(-1, SIGKILL, "node_lost", what + " (nodes " + (j.nodes.empty() ? "?" : j.nodes) + ")");
  }
  if (s == "PREEMPTED") return Failure(kExitPreempted, 0, "preempted", what);
  if (s == "OUT_OF_MEMORY") return Failure(-1, SIGKILL, "out_of_memory", what);
  // Still queued, starting, running, suspended or being requeued (the job
  // is submitted with --no-requeue, so Slurm itself does not restart it).
  static const char* kLive[] = {"PENDING",  "CONFIGURING", "RUNNING",   "COMPLETING", "SUSPENDED", "STOPPED",
                                "RESIZING", "SIGNALING",   "STAGE_OUT", "REQUEUED",   "REQUEUE_HOLD",
                                "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT", "UPDATE_DB", "POWER_UP_NODE"};
  for (const char* live : kLive) {
    if (s == live) return std::nullopt;
  }
  // REVOKED and states newer than this code: ended, cause unknown.
  return Failure(j.exit_code, j.signal, "slurm", what + " (reason " + j.reason + ")");
}

std::string SlurmLauncher::BatchScript(const LaunchRequest& r) const {
  std::string threads = std::to_string(r.threads_per_worker);
  std::string s = "#!/bin/sh\n";
  s += "# Gantry job " + r.job_id + ", attempt " + std::to_string(r.attempt) +
       ": submitted by gantry-coordinator with sbatch.\n"
       "# One step runs the ranks; this shell records its exit status for a\n"
       "# coordinator that restarts after the job ended.\n";
  s += "export OMP_NUM_THREADS=" + threads + " MKL_NUM_THREADS=" + threads + "\n";
  if (::geteuid() == 0) s += "export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1\n";
  std::vector<std::string> argv = {"srun", "--mpi=pmix", "--kill-on-bad-exit=1"};
  argv.insert(argv.end(), options_.srun_args.begin(), options_.srun_args.end());
  argv.insert(argv.end(), {options_.worker_binary, "--job-id", r.job_id, "--attempt", std::to_string(r.attempt),
                           "--spec", r.spec_path, "--storage", r.storage_endpoint, "--monitor",
                           r.monitor_endpoint, "--log-dir", r.log_dir});
  if (!r.coordinator_endpoint.empty()) argv.insert(argv.end(), {"--coordinator", r.coordinator_endpoint});
  for (size_t i = 0; i < argv.size(); ++i) s += (i ? " " : "") + ShellQuote(argv[i]);
  std::string exit_file = ShellQuote(r.log_dir + "/" + kExitStatusFile);
  std::string tmp = ShellQuote(r.log_dir + "/" + kExitStatusFile + ".tmp");
  s += "\nrc=$?\necho $rc > " + tmp + " && mv -f " + tmp + " " + exit_file + "\nexit $rc\n";
  return s;
}

std::vector<std::string> SlurmLauncher::SbatchCommand(const LaunchRequest& r, const std::string& script) const {
  std::vector<std::string> argv = {options_.sbatch,
                                   "--parsable",
                                   "--job-name=" + SlurmJobName(r.job_id, r.attempt),
                                   "--ntasks=" + std::to_string(r.workers),
                                   "--cpus-per-task=" + std::to_string(std::max(1, r.threads_per_worker)),
                                   "--no-requeue",
                                   "--output=" + r.log_dir + "/launcher.log",
                                   "--open-mode=append",
                                   "--chdir=" + r.log_dir};
  if (!options_.partition.empty()) argv.push_back("--partition=" + options_.partition);
  if (!options_.account.empty()) argv.push_back("--account=" + options_.account);
  // A cuda job: as many GPUs per rank as the scheduler gave rank 0; Slurm
  // picks and binds the devices (CUDA_VISIBLE_DEVICES) itself.
  if (!r.gpus.empty() && !r.gpus[0].empty()) {
    argv.push_back("--gpus-per-task=" + std::to_string(std::count(r.gpus[0].begin(), r.gpus[0].end(), ',') + 1));
  }
  // Slurm counts whole minutes: a limit is rounded up to the next minute.
  if (double seconds = MaxRuntimeSeconds(r.spec_path); seconds > 0) {
    argv.push_back("--time=" + std::to_string(static_cast<int64_t>(std::ceil(seconds / 60))));
  }
  argv.push_back(script);
  return argv;
}

Result<std::unique_ptr<Launch>> SlurmLauncher::Start(const LaunchRequest& r) {
  GANTRY_RETURN_IF_ERROR(MakeDirs(r.log_dir));
  std::error_code ec;
  for (const char* stale : {kExitStatusFile, kJobIdFile}) {  // left by an earlier try of this attempt
    std::filesystem::remove(r.log_dir + "/" + stale, ec);
  }
  const std::string script = r.log_dir + "/" + kBatchScript;
  GANTRY_RETURN_IF_ERROR(WriteFileAtomic(script, BatchScript(r), 0755));
  auto out = RunCommand(SbatchCommand(r, script), r.log_dir + "/.sbatch", options_.command_timeout);
  if (!out.ok()) return Status(out.status().code(), "submitting to Slurm: " + out.status().message());
  // --parsable prints "<id>" or "<id>;<cluster>".
  std::string text = Trim(*out);
  text = text.substr(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
  int id = 0;
  if (std::sscanf(text.c_str(), "%d", &id) != 1 || id <= 0) {
    return Status::Internal("submitting to Slurm: sbatch printed no job id: \"" + Trim(*out) + "\"");
  }
  // After the id is known nothing may fail silently: the job is queued.
  if (Status s = WriteFileAtomic(r.log_dir + "/" + kJobIdFile, std::to_string(id) + "\n"); !s.ok()) {
    spdlog::warn("job {}: recording Slurm job id {}: {}", r.job_id, id, s.ToString());
  }
  Note(r.log_dir, "submitted attempt " + std::to_string(r.attempt) + " as Slurm job " + std::to_string(id));
  return std::unique_ptr<Launch>(std::make_unique<SlurmLaunch>(options_, clock_, id, r.log_dir));
}

Result<std::unique_ptr<Launch>> SlurmLauncher::StartProcess(const ProcessRequest& r) {
  return Status::FailedPrecondition("the slurm launcher runs job attempts only; " + r.key +
                                    " runs on the coordinator's host through the local launcher");
}

Result<std::unique_ptr<Launch>> SlurmLauncher::Adopt(const AdoptRequest& r) {
  const std::string name = SlurmJobName(r.job_id, r.attempt);
  const std::string what = "attempt " + std::to_string(r.attempt) + " of job " + r.job_id;
  int id = r.pid;
  if (id <= 0) {
    if (auto text = ReadFile(r.log_dir + "/" + kJobIdFile); text.ok()) id = std::atoi(text->c_str());
  }
  if (id <= 0) {
    // Submitted, but the coordinator stopped before recording the id.
    auto out = RunCommand({options_.squeue, "--noheader", "--name=" + name, "--format=%i"}, r.log_dir + "/.squeue",
                          options_.command_timeout);
    if (out.ok()) id = std::atoi(out->c_str());
  }
  if (id <= 0) return Status::NotFound(what + " has no Slurm job");
  auto out = RunCommand({options_.scontrol, "show", "job", "-o", std::to_string(id)}, r.log_dir + "/.slurm_state",
                        options_.command_timeout);
  std::optional<SlurmJobInfo> known;
  if (out.ok()) {
    auto info = ParseScontrolJob(*out);
    if (info.ok()) {
      if (info->name != name) {
        return Status::NotFound("Slurm job " + std::to_string(id) + " is " + info->name + ", not " + what);
      }
      known = *info;
    }
  } else if (out.status().message().find("Invalid job id") != std::string::npos) {
    return Status::NotFound(what + ": Slurm no longer knows job " + std::to_string(id));
  } else {
    // slurmctld unreachable: adopt on the record's word and learn the state
    // when it answers, rather than start a second copy of a job that runs.
    spdlog::warn("adopting Slurm job {} of {} without checking it: {}", id, what, out.status().ToString());
  }
  return std::unique_ptr<Launch>(std::make_unique<SlurmLaunch>(options_, clock_, id, r.log_dir, known));
}

}  // namespace gantry::coordinator
