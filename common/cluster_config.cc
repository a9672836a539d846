#include "common/cluster_config.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <set>

#include "common/config.h"
#include "common/data_dir.h"

namespace gantry {
namespace {

constexpr const char* kWhat = "cluster config";

std::string Loopback(int port) { return "tcp://127.0.0.1:" + std::to_string(port); }

bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

// "tcp://HOST:PORT" (PORT a number or *); `host` gets HOST. Empty on success,
// else why not.
std::string CheckEndpoint(const std::string& ep, std::string& host) {
  static const std::regex kTcp(R"(^tcp://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._*-]+):([0-9]{1,5}|\*)$)");
  std::smatch m;
  if (!std::regex_match(ep, m, kTcp)) return "must be tcp://HOST:PORT (got \"" + ep + "\")";
  host = m[1];
  if (m[2] != "*" && std::stoi(m[2]) > 65535) return "port " + std::string(m[2]) + " is above 65535";
  return "";
}

std::string CheckHostPort(const std::string& hp, std::string& host) {
  static const std::regex kHostPort(R"(^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})$)");
  std::smatch m;
  if (!std::regex_match(hp, m, kHostPort)) return "must be HOST:PORT (got \"" + hp + "\")";
  host = m[1];
  if (std::stoi(m[2]) > 65535) return "port " + std::string(m[2]) + " is above 65535";
  return "";
}

void ReadStrings(FieldReader& r, const std::string& key, std::vector<std::string>& out) {
  json v;
  r.Get(key, v);
  if (v.is_null()) return;
  if (!v.is_array() || !std::all_of(v.begin(), v.end(), [](const json& s) { return s.is_string(); })) {
    r.Fail(key, "must be a list of strings");
    return;
  }
  out = v.get<std::vector<std::string>>();
}

Status ParseHosts(const json& hosts, const ClusterConfig& c, int detected_cpus, int detected_gpus,
                  std::vector<HostConfig>& out) {
  const bool local = c.launcher.kind == "local";
  if (hosts.is_null()) {
    if (c.launcher.kind == "hosts") {
      return Status::InvalidArgument(std::string(kWhat) +
                                     ": hosts is required with launcher.kind: hosts (the machines ranks run on)");
    }
    HostConfig h{"localhost", detected_cpus, {}};
    for (int i = 0; i < detected_gpus; ++i) h.gpus.push_back(i);
    out.push_back(h);
    return Status::Ok();
  }
  if (!hosts.is_array() || hosts.empty()) {
    return Status::InvalidArgument(std::string(kWhat) + ": hosts must be a non-empty list of {name, cpus, gpus}");
  }
  if (local && hosts.size() != 1) {
    return Status::InvalidArgument(std::string(kWhat) + ": hosts lists " + std::to_string(hosts.size()) +
                                   " hosts, but launcher.kind local runs on this host only: "
                                   "declare one host or use launcher.kind: hosts");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < hosts.size(); ++i) {
    const std::string path = "hosts[" + std::to_string(i) + "]";
    if (!hosts[i].is_object()) {
      return Status::InvalidArgument(std::string(kWhat) + ": " + path + " must be a map {name, cpus, gpus}");
    }
    FieldReader r(hosts[i], path, kWhat);
    HostConfig h;
    r.Get("name", h.name);
    h.cpus = -1;
    r.Get("cpus", h.cpus);
    json gpus;
    r.Get("gpus", gpus);
    if (h.name.empty()) r.Fail("name", "is required (the host name mpirun or Slurm knows)");
    if (!h.name.empty() && !names.insert(h.name).second) r.Fail("name", "repeats host " + h.name);
    if (h.cpus == -1) {
      if (local) {
        h.cpus = detected_cpus;
      } else {
        r.Fail("cpus", "is required for a remote host: how many ranks it takes");
      }
    } else if (h.cpus < 0) {
      r.Fail("cpus", "must be >= 0 (got " + std::to_string(h.cpus) + ")");
    }
    if (gpus.is_null()) {
      if (local) {
        for (int g = 0; g < detected_gpus; ++g) h.gpus.push_back(g);
      }
    } else if (gpus.is_number_integer()) {
      const int n = gpus.get<int>();
      if (n < 0) r.Fail("gpus", "must be >= 0 (got " + std::to_string(n) + ")");
      for (int g = 0; g < n; ++g) h.gpus.push_back(g);
    } else if (gpus.is_array()) {
      std::set<int> seen;
      for (const json& g : gpus) {
        if (!g.is_number_integer() || g.get<int>() < 0 || !seen.insert(g.get<int>()).second) {
          r.Fail("gpus", "must list distinct device indices >= 0, like [0, 1]");
          break;
        }
        h.gpus.push_back(g.get<int>());
      }
    } else {
      r.Fail("gpus", "must be a count or a list of device indices");
    }
    GANTRY_RETURN_IF_ERROR(r.Finish());
    out.push_back(std::move(h));
  }
  return Status::Ok();
}

}  // namespace

int ClusterConfig::TotalCpus() const {
  int n = 0;
  for (const auto& h : hosts) n += h.cpus;
  return n;
}

int ClusterConfig::TotalGpus() const {
  int n = 0;
  for (const auto& h : hosts) n += static_cast<int>(h.gpus.size());
  return n;
}

Result<ClusterConfig> ClusterConfig::Parse(const json& j, int detected_cpus, int detected_gpus) {
  if (!j.is_null() && !j.is_object()) return Status::InvalidArgument(std::string(kWhat) + ": must be a YAML map");
  const json root = j.is_null() ? json::object() : j;
  ClusterConfig c;
  c.coordinator_bind = Loopback(kCoordinatorPort);
  c.storage_bind = Loopback(kStoragePort);
  c.monitor_ingest = Loopback(kMonitorIngestPort);
  c.monitor_feed = Loopback(kMonitorFeedPort);
  c.monitor_api = Loopback(kMonitorApiPort);
  c.monitor_http = "127.0.0.1:" + std::to_string(kMonitorHttpPort);

  FieldReader r(root, "", kWhat);
  r.Get("data_dir", c.data_dir);
  r.Get("auth", c.auth);
  FieldReader co = r.Child("coordinator");
  co.Get("bind", c.coordinator_bind);
  co.Get("stop_grace_seconds", c.stop_grace_seconds);
  FieldReader st = r.Child("storage");
  st.Get("bind", c.storage_bind);
  FieldReader mo = r.Child("monitor");
  mo.Get("ingest", c.monitor_ingest);
  mo.Get("feed", c.monitor_feed);
  mo.Get("api", c.monitor_api);
  mo.Get("http", c.monitor_http);
  FieldReader dw = mo.Child("drift_watch");
  dw.Get("dir", c.drift_watch.dir);
  dw.Get("reference", c.drift_watch.reference);
  dw.Get("interval_seconds", c.drift_watch.interval_seconds);
  if (!c.drift_watch.dir.empty() && c.drift_watch.reference.empty()) {
    dw.Fail("reference", "is required with dir: a dataset path, or MODEL@REF (the profile stored with that version)");
  }
  if (c.drift_watch.dir.empty() && !c.drift_watch.reference.empty()) {
    dw.Fail("dir", "is required with reference: the dataset directory whose new shards are checked");
  }
  if (!(c.drift_watch.interval_seconds > 0)) dw.Fail("interval_seconds", "must be > 0");
  FieldReader la = r.Child("launcher");
  la.Get("kind", c.launcher.kind);
  ReadStrings(la, "mpirun_args", c.launcher.mpirun_args);
  la.Get("rsh_agent", c.launcher.rsh_agent);
  la.Get("partition", c.launcher.partition);
  la.Get("account", c.launcher.account);
  ReadStrings(la, "srun_args", c.launcher.srun_args);
  json hosts;
  r.Get("hosts", hosts);
  FieldReader sc = r.Child("scheduler");
  sc.Get("backfill", c.scheduler.backfill);
  sc.Get("preemption", c.scheduler.preemption);
  sc.Get("preempt_grace_seconds", c.scheduler.preempt_grace_seconds);
  if (c.scheduler.preempt_grace_seconds < 0) sc.Fail("preempt_grace_seconds", "must be >= 0");

  if (c.auth != "none" && c.auth != "curve") r.Fail("auth", "must be none or curve (got \"" + c.auth + "\")");
  if (c.stop_grace_seconds < 0) co.Fail("stop_grace_seconds", "must be >= 0");
  const std::string& kind = c.launcher.kind;
  if (kind != "local" && kind != "hosts" && kind != "slurm") {
    la.Fail("kind", "must be local, hosts or slurm (got \"" + kind + "\")");
  }
  if (kind != "slurm") {
    if (!c.launcher.partition.empty()) la.Fail("partition", "is only meaningful with kind: slurm");
    if (!c.launcher.account.empty()) la.Fail("account", "is only meaningful with kind: slurm");
    if (!c.launcher.srun_args.empty()) la.Fail("srun_args", "is only meaningful with kind: slurm");
  }
  if (kind != "hosts" && !c.launcher.rsh_agent.empty()) la.Fail("rsh_agent", "is only meaningful with kind: hosts");

  struct Ep {
    FieldReader* reader;
    const char* key;
    const std::string* value;
    bool host_port;
  };
  const Ep endpoints[] = {{&co, "bind", &c.coordinator_bind, false}, {&st, "bind", &c.storage_bind, false},
                          {&mo, "ingest", &c.monitor_ingest, false}, {&mo, "feed", &c.monitor_feed, false},
                          {&mo, "api", &c.monitor_api, false},       {&mo, "http", &c.monitor_http, true}};
  for (const Ep& e : endpoints) {
    std::string host;
    std::string why = e.host_port ? CheckHostPort(*e.value, host) : CheckEndpoint(*e.value, host);
    if (!why.empty()) {
      e.reader->Fail(e.key, why);
    } else if (!IsLoopbackHost(host) && c.auth != "curve") {
      e.reader->Fail(e.key, "binds beyond loopback (" + host +
                                "): set auth: curve so that only clients with an authorised key reach it");
    }
  }
  for (FieldReader* fr : {&r, &co, &st, &mo, &dw, &la, &sc}) GANTRY_RETURN_IF_ERROR(fr->Finish());
  GANTRY_RETURN_IF_ERROR(ParseHosts(hosts, c, detected_cpus, detected_gpus, c.hosts));
  return c;
}

Result<ClusterConfig> ClusterConfig::Load(const std::string& path) {
  GANTRY_ASSIGN_OR_RETURN(json j, LoadYamlFile(path));
  auto c = Parse(j, DetectCpus(), DetectGpus());
  if (!c.ok()) return c.status().WithContext(path);
  return c;
}

json ClusterConfig::ToJson() const {
  json host_list = json::array();
  for (const auto& h : hosts) host_list.push_back({{"name", h.name}, {"cpus", h.cpus}, {"gpus", h.gpus}});
  json l = {{"kind", launcher.kind}, {"mpirun_args", launcher.mpirun_args}};
  if (!launcher.rsh_agent.empty()) l["rsh_agent"] = launcher.rsh_agent;
  if (launcher.kind == "slurm") {
    l["partition"] = launcher.partition;
    l["account"] = launcher.account;
    l["srun_args"] = launcher.srun_args;
  }
  json j = {{"auth", auth},
            {"coordinator", {{"bind", coordinator_bind}, {"stop_grace_seconds", stop_grace_seconds}}},
            {"storage", {{"bind", storage_bind}}},
            {"monitor", {{"ingest", monitor_ingest}, {"feed", monitor_feed}, {"api", monitor_api}, {"http", monitor_http}}},
            {"launcher", l},
            {"hosts", host_list},
            {"scheduler",
             {{"backfill", scheduler.backfill},
              {"preemption", scheduler.preemption},
              {"preempt_grace_seconds", scheduler.preempt_grace_seconds}}}};
  if (!data_dir.empty()) j["data_dir"] = data_dir;
  if (!drift_watch.dir.empty()) {
    j["monitor"]["drift_watch"] = {{"dir", drift_watch.dir},
                                   {"reference", drift_watch.reference},
                                   {"interval_seconds", drift_watch.interval_seconds}};
  }
  return j;
}

int DetectCpus() {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

int DetectGpus(const std::string& dev_root) {
  static const std::regex kDevice(R"(^nvidia[0-9]+$)");
  std::error_code ec;
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dev_root, ec)) {
    if (std::regex_match(e.path().filename().string(), kDevice)) ++n;
  }
  return n;
}

}  // namespace gantry
