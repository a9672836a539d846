#include "coordinator/hosts_launcher.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "common/fs.h"
#include "common/protocol.h"
#include "coordinator/mpi_launch.h"

namespace gantry::coordinator {
namespace {

// What mpirun (OpenMPI 4, orte help texts) prints when it loses a daemon,
// and when it cannot start one.
constexpr std::string_view kLostDaemon = "lost communication with a remote daemon";
constexpr std::string_view kRemoteDaemon = "Remote daemon:";
constexpr std::string_view kCouldNotStart = "unable to reliably start one or more daemons";
constexpr std::string_view kFailedAfterLaunch = "daemon has unexpectedly failed after launch";
// A surviving rank's report of a peer that vanished ("Peer host: node2").
constexpr std::string_view kPeerHost = "Peer host:";
// The rsh agent's own complaint when it is ssh.
constexpr std::string_view kSshConnect = "ssh: connect to host ";
constexpr std::string_view kSshResolve = "ssh: Could not resolve hostname ";
// mpirun's exit status after losing a daemon (ORTE_ERR_COMM_FAILURE).
constexpr int kExitLostDaemon = 205;
// How much of the end of launcher.log the classification reads.
constexpr long kLogTailBytes = 64 * 1024;
// In the attempt's folder: the agent wrapper and what it records.
constexpr const char* kRshAgentFile = "rsh-agent";
constexpr const char* kRshSessionsFile = "rsh_sessions";

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

// For each line holding `marker`: the word `pick` finds in the text after
// it, without duplicates.
template <typename Pick>
std::vector<std::string> HostsAfter(std::string_view log, std::string_view marker, Pick pick) {
  std::vector<std::string> hosts;
  for (size_t at = log.find(marker); at != std::string_view::npos; at = log.find(marker, at + 1)) {
    size_t eol = log.find('\n', at);
    std::string_view rest = log.substr(at + marker.size(), eol == std::string_view::npos ? std::string_view::npos
                                                                                     : eol - at - marker.size());
    std::string host = Trim(pick(rest));
    if (!host.empty() && std::find(hosts.begin(), hosts.end(), host) == hosts.end()) hosts.push_back(host);
  }
  return hosts;
}

std::string_view FirstWord(std::string_view s, std::string_view stops) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  s = s.substr(b);
  return s.substr(0, s.find_first_of(stops));
}

// "Remote daemon: [[17830,0],1] on node 10.77.0.2".
std::vector<std::string> LostDaemonHosts(std::string_view log) {
  return HostsAfter(log, kRemoteDaemon, [](std::string_view rest) {
    size_t on = rest.rfind(" on node ");
    return on == std::string_view::npos ? std::string_view() : rest.substr(on + 9);
  });
}

// "Peer host:  10.77.0.2" (a rank's peer disconnected).
std::vector<std::string> PeerHosts(std::string_view log) {
  return HostsAfter(log, kPeerHost, [](std::string_view rest) { return FirstWord(rest, " \t\r"); });
}

// "ssh: connect to host node2 port 22: …", "ssh: Could not resolve hostname node2: …".
std::vector<std::string> SshHosts(std::string_view log) {
  auto hosts = HostsAfter(log, kSshConnect, [](std::string_view rest) { return FirstWord(rest, " \t\r"); });
  for (auto& h : HostsAfter(log, kSshResolve, [](std::string_view rest) { return FirstWord(rest, ": \t\r"); })) {
    if (std::find(hosts.begin(), hosts.end(), h) == hosts.end()) hosts.push_back(h);
  }
  return hosts;
}

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::string ReadTail(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return "";
  std::fseek(f, 0, SEEK_END);
  long size = std::ftell(f);
  long from = std::max(0L, size - kLogTailBytes);
  std::fseek(f, from, SEEK_SET);
  std::string out(static_cast<size_t>(size - from), '\0');
  out.resize(std::fread(out.data(), 1, out.size(), f));
  std::fclose(f);
  return out;
}

std::string HostOf(const std::string& endpoint) {
  std::string rest = endpoint.substr(endpoint.find("://") + 3);
  if (!rest.empty() && rest[0] == '[') return rest.substr(1, rest.find(']') - 1);  // [::1]:7601
  return rest.substr(0, rest.rfind(':'));
}

bool IsLocalName(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// A Launch whose exit is classified from the attempt's record (ClassifyMpirunExit).
class ClassifyingLaunch final : public Launch {
 public:
  ClassifyingLaunch(std::unique_ptr<Launch> inner, std::string log_dir)
      : inner_(std::move(inner)), log_dir_(std::move(log_dir)) {}
  std::optional<ExitInfo> Poll() override {
    auto e = inner_->Poll();
    if (!e) return e;
    return ClassifyMpirunExit(*e, ReadMpirunRecord(log_dir_));
  }
  void RequestStop() override { inner_->RequestStop(); }
  void RequestPreempt() override { inner_->RequestPreempt(); }
  ExitInfo Kill() override { return ClassifyMpirunExit(inner_->Kill(), ReadMpirunRecord(log_dir_)); }
  int pid() const override { return inner_->pid(); }
  int pgid() const override { return inner_->pgid(); }
  void Abandon() override { inner_->Abandon(); }

 private:
  std::unique_ptr<Launch> inner_;
  std::string log_dir_;
};

}  // namespace

MpirunRecord ReadMpirunRecord(const std::string& log_dir) {
  MpirunRecord rec;
  rec.launcher_log = ReadTail(log_dir + "/launcher.log");
  std::istringstream sessions(ReadTail(log_dir + "/" + kRshSessionsFile));
  for (std::string host; sessions >> host;) {
    std::string status;
    sessions >> status;
    if (std::find(rec.failed_sessions.begin(), rec.failed_sessions.end(), host) == rec.failed_sessions.end()) {
      rec.failed_sessions.push_back(host);
    }
  }
  if (auto text = ReadFile(log_dir + "/placement.json"); text.ok()) {
    json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("ranks") && j["ranks"].is_array()) {
      for (size_t r = 0; r < j["ranks"].size(); ++r) {
        const json& rank = j["ranks"][r];
        if (!rank.is_object() || !rank.contains("host") || !rank["host"].is_string()) continue;
        std::string host = rank["host"].get<std::string>();
        std::error_code ec;
        if (std::filesystem::exists(log_dir + "/rank-" + std::to_string(r) + ".log", ec) &&
            std::find(rec.hosts_ran.begin(), rec.hosts_ran.end(), host) == rec.hosts_ran.end()) {
          rec.hosts_ran.push_back(host);
        }
      }
    }
  }
  return rec;
}

ExitInfo ClassifyMpirunExit(ExitInfo exit, const MpirunRecord& rec) {
  if (exit.ok() || !exit.failure_class.empty()) return exit;
  const std::string_view log = rec.launcher_log;
  auto lost = [&exit](std::vector<std::string> hosts, const std::string& how) {
    exit.failure_class = "node_lost";
    exit.lost_hosts = std::move(hosts);
    exit.detail = exit.lost_hosts.empty() ? "mpirun lost the daemon of a host (see the launcher log)"
                                          : "mpirun lost host " + Join(exit.lost_hosts) + " (" + how + ")";
    return exit;
  };
  if (log.find(kLostDaemon) != std::string_view::npos) {
    return lost(LostDaemonHosts(log), "host down, network cut or its orted killed");
  }
  // Only with mpirun's word that a daemon failed: a session can also end in
  // error while mpirun tears down an attempt that failed for another reason.
  const bool daemon_failed = log.find(kCouldNotStart) != std::string_view::npos ||
                             log.find(kFailedAfterLaunch) != std::string_view::npos ||
                             (exit.signal == 0 && exit.exit_code == kExitLostDaemon);
  if (daemon_failed) {
    // A session that ended in error on a host where ranks had run: its
    // daemon had started, and died (or its host went away).
    std::vector<std::string> died, never;
    for (const auto& h : rec.failed_sessions) {
      (std::find(rec.hosts_ran.begin(), rec.hosts_ran.end(), h) != rec.hosts_ran.end() ? died : never).push_back(h);
    }
    if (!died.empty()) return lost(died, "its daemon ended while the job ran: host down, network cut or orted killed");
    // Without a session record (an adopted attempt from before the
    // wrapper): the ranks that lost their peers name the host.
    if (rec.failed_sessions.empty()) {
      if (auto peers = PeerHosts(log); !peers.empty()) {
        return lost(std::move(peers), "its daemon and ranks vanished: host down, network cut or orted killed");
      }
    }
    if (exit.signal == 0 && exit.exit_code == kExitLostDaemon) {
      return lost(never, "its daemon's session ended: host down, network cut or orted killed");
    }
    exit.failure_class = "node_unreachable";
    exit.lost_hosts = never.empty() ? SshHosts(log) : never;
    exit.detail = std::string("mpirun could not start its daemon on ") +
                  (exit.lost_hosts.empty() ? "every host" : "host " + Join(exit.lost_hosts)) +
                  ": check launcher.rsh_agent (ssh keys, host names), that orted is on PATH there (or --prefix in "
                  "launcher.mpirun_args) and that the hosts reach this one (see the launcher log)";
    return exit;
  }
  return exit;
}

Status CheckRemoteEndpoints(const LaunchRequest& r) {
  if (!r.hosts.empty() && std::all_of(r.hosts.begin(), r.hosts.end(), IsLocalName)) return Status::Ok();
  const std::pair<const char*, const std::string*> endpoints[] = {
      {"storage", &r.storage_endpoint}, {"monitor", &r.monitor_endpoint}, {"coordinator", &r.coordinator_endpoint}};
  for (const auto& [what, ep] : endpoints) {
    if (ep->empty()) continue;
    std::string why;
    if (ep->rfind("tcp://", 0) != 0) {
      why = "is not a tcp:// address";
    } else {
      std::string host = HostOf(*ep);
      if (IsLocalName(host)) why = "is a loopback address";
      if (host == "*" || host == "0.0.0.0" || host == "::") why = "is a wildcard address, not one to connect to";
    }
    if (!why.empty()) {
      return Status::InvalidArgument(
          "launcher hosts: the " + std::string(what) + " endpoint " + *ep + " handed to the workers " + why +
          ", which ranks on other hosts cannot reach: bind the " + what +
          " to this host's address on the network the hosts share (cluster config " +
          (std::string(what) == "storage" ? "storage.bind" : std::string(what) == "monitor" ? "monitor.ingest"
                                                                                             : "coordinator.bind") +
          ", with auth: curve)");
    }
  }
  return Status::Ok();
}

std::vector<std::string> HostsMpiLauncher::CommandLine(const LaunchRequest& r) const {
  std::string host_list;
  for (const auto& h : r.hosts) host_list += (host_list.empty() ? "" : ",") + h;
  std::vector<std::string> argv = {options_.mpirun, "-np", std::to_string(r.workers), "-H", host_list,
                                   "--mca", "rmaps", "seq", "--bind-to", "none"};
  if (::geteuid() == 0) argv.push_back("--allow-run-as-root");
  auto user_sets = [&](const std::string& param) {
    return std::find(options_.extra_args.begin(), options_.extra_args.end(), param) != options_.extra_args.end();
  };
  auto mca = [&](const std::string& param, const std::string& value) {
    if (!user_sets(param)) argv.insert(argv.end(), {"--mca", param, value});
  };
  mca("plm_rsh_agent", r.log_dir + "/" + kRshAgentFile);  // wraps launcher.rsh_agent (WriteRshAgent)
  mca("oob_tcp_keepalive_time", std::to_string(options_.keepalive_time_seconds));
  mca("oob_tcp_keepalive_intvl", std::to_string(options_.keepalive_interval_seconds));
  mca("oob_tcp_keepalive_probes", std::to_string(options_.keepalive_probes));
  for (const auto& a : options_.extra_args) argv.push_back(a);
  if (!options_.keys_dir.empty()) argv.insert(argv.end(), {"-x", "GANTRY_KEYS=" + options_.keys_dir});
  AppendWorkerCommand(argv, options_.worker_binary, r);
  return argv;
}

Status HostsMpiLauncher::WriteRshAgent(const std::string& log_dir) const {
  const std::string agent = options_.rsh_agent.empty() ? "ssh" : options_.rsh_agent;
  const std::string sessions = log_dir + "/" + kRshSessionsFile;
  std::string script =
      "#!/bin/sh\n"
      "# mpirun's rsh agent for this attempt (coordinator/hosts_launcher.h): runs\n"
      "# launcher.rsh_agent and records a session that ends in error.\n"
      "host=\n"
      "for a in \"$@\"; do case \"$a\" in -*) ;; *) host=$a; break ;; esac; done\n" +
      agent + " \"$@\"\n"
      "rc=$?\n"
      "[ $rc -eq 0 ] || echo \"$host $rc\" >> '" + sessions + "'\n"
      "exit $rc\n";
  const std::string path = log_dir + "/" + kRshAgentFile;
  GANTRY_RETURN_IF_ERROR(WriteFileAtomic(path, script));
  if (::chmod(path.c_str(), 0755) != 0) return Status::Internal("launcher hosts: chmod " + path + " failed");
  return Status::Ok();
}

Result<std::unique_ptr<Launch>> HostsMpiLauncher::Start(const LaunchRequest& r) {
  if (static_cast<int>(r.hosts.size()) != r.workers) {
    return Status::InvalidArgument("launcher hosts: attempt " + std::to_string(r.attempt) + " of job " + r.job_id +
                                   " has " + std::to_string(r.hosts.size()) + " placed ranks for " +
                                   std::to_string(r.workers) + " workers");
  }
  for (const auto& h : r.hosts) {
    if (h.empty() || h.find_first_of(", :\t\n") != std::string::npos) {
      return Status::InvalidArgument("launcher hosts: host name \"" + h +
                                     "\" cannot be given to mpirun -H: name hosts[] without spaces, commas or colons");
    }
  }
  GANTRY_RETURN_IF_ERROR(CheckRemoteEndpoints(r));
  GANTRY_RETURN_IF_ERROR(MakeDirs(r.log_dir));
  std::error_code ec;
  std::filesystem::remove(r.log_dir + "/" + kRshSessionsFile, ec);  // left by an earlier try of this attempt
  GANTRY_RETURN_IF_ERROR(WriteRshAgent(r.log_dir));
  GANTRY_ASSIGN_OR_RETURN(auto launch,
                          SpawnWrapped(CommandLine(r), r.log_dir, "launcher.log", MpirunEnv(r.threads_per_worker)));
  return std::unique_ptr<Launch>(std::make_unique<ClassifyingLaunch>(std::move(launch), r.log_dir));
}

Result<std::unique_ptr<Launch>> HostsMpiLauncher::StartProcess(const ProcessRequest& r) {
  return Status::FailedPrecondition("launcher hosts starts job attempts only; " + r.key +
                                    " runs on the coordinator's host through the local launcher");
}

Result<std::unique_ptr<Launch>> HostsMpiLauncher::Adopt(const AdoptRequest& r) {
  GANTRY_ASSIGN_OR_RETURN(auto launch, AdoptWrapped(r));
  return std::unique_ptr<Launch>(std::make_unique<ClassifyingLaunch>(std::move(launch), r.log_dir));
}

}  // namespace gantry::coordinator
