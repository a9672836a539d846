// The scheduler's arithmetic, kept apart from the job state machine
// (coordinator.cc) so that it is plain data in, decisions out:
//
//  * SlotMap: the cluster's slots (cluster config hosts: CPU slots and GPU
//    device indices) and which of them running attempts hold. A cpu job's
//    rank takes slots_per_worker CPU slots, a cuda job's rank takes
//    slots_per_worker GPUs (and no CPU slot); ranks are placed host by host,
//    first fit, and a rank never spans hosts.
//  * Forecast: how a pool's free slots grow as running attempts end, from
//    each attempt's start + max_runtime (an attempt without max_runtime
//    ends "never" as far as plans go). It answers the EASY backfill
//    question (does starting this job now delay the reservation of the
//    head of the queue?) and estimates start times.
//  * ChooseVictims: the lowest-priority running attempts whose slots,
//    together with the free ones, let a higher-priority job start.
//
// Times are seconds from now (0 = now; kNever = unknown/never).
// Thread safety: value types, no shared state.
#pragma once

#include <algorithm>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/cluster_config.h"
#include "common/job_spec.h"
#include "common/protocol.h"

namespace gantry::coordinator {

inline constexpr double kNever = std::numeric_limits<double>::infinity();

enum class Pool { kCpu, kGpu };
inline Pool PoolOf(const JobSpec& spec) { return spec.resources.device == "cuda" ? Pool::kGpu : Pool::kCpu; }
// "cpu" / "gpu".
const char* PoolName(Pool p);
// "1 gpu slot", "3 cpu slots".
std::string SlotCount(int n, Pool p);

// Where one rank runs and, for a cuda job, the devices it gets
// (its CUDA_VISIBLE_DEVICES).
struct RankPlacement {
  std::string host;
  std::vector<int> gpus;
};

struct Placement {
  Pool pool = Pool::kCpu;
  int slots_per_rank = 1;
  std::vector<RankPlacement> ranks;

  int slots() const { return slots_per_rank * static_cast<int>(ranks.size()); }
  // Per rank, the CUDA_VISIBLE_DEVICES value ("0", "2,3"); empty for cpu.
  std::vector<std::string> GpuLists() const;
  std::vector<std::string> Hosts() const;
  json ToJson() const;
  static Result<Placement> FromJson(const json& j);
};

class SlotMap {
 public:
  explicit SlotMap(std::vector<HostConfig> hosts);

  const std::vector<HostConfig>& hosts() const { return hosts_; }
  int Total(Pool p) const;
  int Used(Pool p) const;
  int Free(Pool p) const { return std::max(0, Total(p) - Used(p)); }
  // GPU devices in use on `host` (index into hosts()).
  const std::set<int>& GpusUsed(size_t host) const { return gpus_used_[host]; }
  int CpusUsed(size_t host) const { return cpus_used_[host]; }

  // A placement of the whole gang on the free slots, or nullopt if it does
  // not fit now. Packs ranks onto as few hosts as it can (first fit).
  // Hosts named in `excluded` get no rank (a job's hosts lost earlier).
  std::optional<Placement> Place(const JobSpec& spec, const std::set<std::string>& excluded = {}) const;
  // Whether the gang could ever fit (on an empty cluster, without `excluded`).
  bool CouldEverFit(const JobSpec& spec, const std::set<std::string>& excluded = {}) const;
  // Slots of pool `p` on the hosts not in `excluded` (free or not).
  int TotalExcept(Pool p, const std::set<std::string>& excluded) const;
  // Marks a placement's slots used / free. Take tolerates a placement that
  // no longer matches the hosts (a re-adopted attempt after a config
  // change): unknown hosts are ignored.
  void Take(const Placement& p);
  void Release(const Placement& p);

 private:
  std::optional<Placement> PlaceOn(const JobSpec& spec, const std::vector<int>& cpus_used,
                                   const std::vector<std::set<int>>& gpus_used,
                                   const std::set<std::string>& excluded) const;
  int HostIndex(const std::string& name) const;

  std::vector<HostConfig> hosts_;
  std::vector<int> cpus_used_;
  std::vector<std::set<int>> gpus_used_;
};

// A gang that holds (or is planned to hold) slots of one pool over
// [start, end), in seconds from now; running attempts start at 0.
struct Hold {
  int slots = 0;
  double start = 0;
  double end = kNever;  // kNever: no max_runtime
};

// The future of one pool's slots.
class Forecast {
 public:
  Forecast(int total, std::vector<Hold> holds) : total_(total), holds_(std::move(holds)) {}

  void Add(const Hold& h) { holds_.push_back(h); }
  // Slots surely free at time t (every hold ends by its end).
  int FreeAt(double t) const;
  // Earliest time >= 0 at which `slots` are surely free for `duration`
  // seconds (kNever when that depends on a hold that never ends).
  double EarliestStart(int slots, double duration) const;
  // EASY: would a job of `slots` that ends at `end` (kNever if unknown),
  // started now, delay a head job that needs `head_slots`? Safe when at
  // every moment before the job ends either the head could not start even
  // if every hold without an end ended at once, or the head could start
  // even with this job's slots taken. With known ends this is EASY's rule:
  // ends before the reservation, or fits in the slots the head leaves over.
  bool DelaysHead(int head_slots, int slots, double end) const;

 private:
  int total_;
  std::vector<Hold> holds_;
};

// A running attempt that could be preempted.
struct Candidate {
  std::string job_id;
  int priority = 0;
  int slots = 0;
  double running_for = 0;  // seconds
};

// Victims for a job that needs `need` slots where `free` are free now:
// only candidates of lower priority than `priority`; the lowest priorities
// first (among equals the most recently started, which loses least work),
// then any victim whose slots are not needed is spared again. Empty when
// even all of them would not free enough.
std::vector<Candidate> ChooseVictims(std::vector<Candidate> candidates, int priority, int need, int free);

}  // namespace gantry::coordinator
