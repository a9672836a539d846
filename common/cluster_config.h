// ClusterConfig: configs/cluster.yaml, read by `gantry up --config FILE` and
// the daemons' --config (docs/operations.md, "Cluster configuration").
//
//   data_dir: /var/lib/gantry
//   coordinator: {bind: tcp://127.0.0.1:7600, stop_grace_seconds: 10}
//   storage:     {bind: tcp://127.0.0.1:7601}
//   monitor:     {ingest: tcp://…:7602, feed: tcp://…:7603, api: tcp://…:7604,
//                 http: 127.0.0.1:8600,
//                 drift_watch: {dir: /data/incoming,        # new shards checked for drift
//                               reference: fashion@production,  # MODEL@REF or a dataset
//                               interval_seconds: 10}}
//   launcher:
//     kind: local            # local | hosts | slurm
//     mpirun_args: []        # extra mpirun arguments (local, hosts)
//     rsh_agent: ""          # hosts: OpenMPI's plm_rsh_agent (default ssh)
//     partition: ""          # slurm: sbatch --partition
//     account: ""            # slurm: sbatch --account
//     srun_args: []          # slurm: extra srun arguments
//   hosts:                   # where ranks run (local: this host only)
//     - name: node1          # as mpirun/Slurm know it
//       cpus: 16             # CPU slots; default: this host's cores (local)
//       gpus: 2              # GPU slots: a count, or the device list [0, 2];
//                            # default: the GPUs detected on this host (local)
//   scheduler:               # the coordinator's policy (docs/operations.md)
//     backfill: true         # EASY backfill around the head job's reservation
//     preemption: false      # higher priority may preempt lower (checkpoint, requeue)
//     preempt_grace_seconds: 300  # a job preempts, or is preempted, at most this often
//
// Every field is optional; absent ones take the embedded cluster's defaults
// (loopback, the ports in data_dir.h, one local host). Errors name the field
// path, like job specs: "cluster config: hosts[1].gpus must be >= 0 (got -1)".
// A bind address beyond loopback is allowed only with `auth: curve` (the
// services refuse to be reachable unauthenticated, DESIGN.md "Security").
//
// Thread safety: a value type.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/protocol.h"

namespace gantry {

struct HostConfig {
  std::string name;
  int cpus = 0;
  std::vector<int> gpus;  // device indices (CUDA_VISIBLE_DEVICES values)
};

struct LauncherConfig {
  std::string kind = "local";
  std::vector<std::string> mpirun_args;
  std::string rsh_agent;
  std::string partition;
  std::string account;
  std::vector<std::string> srun_args;
};

struct SchedulerConfig {
  bool backfill = true;
  bool preemption = false;
  double preempt_grace_seconds = 300;
};

// The monitor's continuous drift watch (gantry-monitor --drift-watch);
// off while `dir` is empty.
struct DriftWatchConfig {
  std::string dir;
  std::string reference;
  double interval_seconds = 10;
};

struct ClusterConfig {
  std::string data_dir;
  std::string auth = "none";  // none | curve
  std::string coordinator_bind;
  double stop_grace_seconds = 10;
  std::string storage_bind;
  std::string monitor_ingest;
  std::string monitor_feed;
  std::string monitor_api;
  std::string monitor_http;  // host:port
  DriftWatchConfig drift_watch;
  LauncherConfig launcher;
  std::vector<HostConfig> hosts;
  SchedulerConfig scheduler;

  int TotalCpus() const;
  int TotalGpus() const;

  // `detected_cpus` and `detected_gpus` fill a local host that gives none
  // (DetectCpus()/DetectGpus() in production, fixed values in tests).
  static Result<ClusterConfig> Parse(const json& j, int detected_cpus, int detected_gpus);
  static Result<ClusterConfig> Load(const std::string& path);
  json ToJson() const;
};

// This host's CPU cores (sysconf) and NVIDIA GPUs (/dev/nvidiaN under
// `dev_root`; no driver call, so it works where CUDA is absent).
int DetectCpus();
int DetectGpus(const std::string& dev_root = "/dev");

}  // namespace gantry
