// Hosts a job's next attempts stay off. When an attempt ends because a host
// was lost (failure class node_lost, ExitInfo::lost_hosts, hosts_launcher.h),
// that host gets no rank of the same job for `duration`: the restart runs on
// the remaining capacity, or waits for it, and says so in its reason. After
// `duration` the host is tried again (a host back from a reboot, or the only
// hosts large enough for the gang). Other jobs still use the host: a host
// that keeps failing fails their attempts too, and each then avoids it.
//
// In memory, like the preemption bookkeeping: a restarted coordinator
// forgets the exclusions (the attempts' records still name the lost hosts).
//
// Thread safety: used from the coordinator's loop only.
#pragma once

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/job_spec.h"
#include "coordinator/scheduler.h"

namespace gantry::coordinator {

class HostExclusions {
 public:
  HostExclusions(std::chrono::steady_clock::duration duration, const Clock& clock)
      : duration_(duration), clock_(clock) {}

  // Keeps `hosts` off job `job_id`'s placements from now on (attempt
  // `attempt` ended with `failure_class` on them: node_lost,
  // node_unreachable). Returns what the attempt's message adds:
  // "; host h2 excluded from the job's next attempts until 12:00:00 UTC".
  std::string Exclude(const std::string& job_id, const std::vector<std::string>& hosts, int attempt,
                      const std::string& failure_class);
  // The hosts job `job_id` must not use now (expired exclusions dropped).
  std::set<std::string> Of(const std::string& job_id);
  // Why a job with exclusions `excluded` (non-empty) does not start now:
  // "waiting: host h2 excluded after node lost in attempt 1; needs 2 cpu
  // slots, the other hosts have 1 (h2 is tried again at 12:00:00 UTC)", or
  // with enough slots elsewhere that are busy, "…; needs 2 cpu slots, 1 of 3
  // free on the other hosts".
  std::string WaitReason(const std::string& job_id, const std::set<std::string>& excluded, const SlotMap& slots,
                         const JobSpec& spec) const;
  // The job ended: its exclusions go.
  void Forget(const std::string& job_id) { jobs_.erase(job_id); }

 private:
  struct Entry {
    std::chrono::steady_clock::time_point until;
    std::string until_text;  // "12:00:00 UTC"
    int attempt = 0;
    std::string why;  // "node lost"
  };
  std::chrono::steady_clock::duration duration_;
  const Clock& clock_;
  std::map<std::string, std::map<std::string, Entry>> jobs_;  // job id -> host -> exclusion
};

}  // namespace gantry::coordinator
