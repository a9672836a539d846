#include "coordinator/host_exclusions.h"

#include <algorithm>
#include <ctime>

namespace gantry::coordinator {
namespace {

std::string UtcClock(double unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%H:%M:%S UTC", &tm);
  return buf;
}

std::string Join(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::string HostExclusions::Exclude(const std::string& job_id, const std::vector<std::string>& hosts, int attempt,
                                    const std::string& failure_class) {
  if (hosts.empty()) return "";
  const double seconds = std::chrono::duration<double>(duration_).count();
  std::string why = failure_class;
  std::replace(why.begin(), why.end(), '_', ' ');
  Entry e{clock_.Now() + duration_, UtcClock(clock_.WallSeconds() + seconds), attempt, why};
  std::set<std::string> names;
  for (const auto& h : hosts) {
    jobs_[job_id][h] = e;
    names.insert(h);
  }
  return std::string("; host") + (names.size() > 1 ? "s " : " ") + Join(names) +
         " excluded from the job's next attempts until " + e.until_text;
}

std::set<std::string> HostExclusions::Of(const std::string& job_id) {
  std::set<std::string> out;
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return out;
  const auto now = clock_.Now();
  for (auto h = it->second.begin(); h != it->second.end();) {
    if (now >= h->second.until) {
      h = it->second.erase(h);
    } else {
      out.insert(h->first);
      ++h;
    }
  }
  if (it->second.empty()) jobs_.erase(it);
  return out;
}

std::string HostExclusions::WaitReason(const std::string& job_id, const std::set<std::string>& excluded,
                                       const SlotMap& slots, const JobSpec& spec) const {
  const Pool pool = PoolOf(spec);
  const int need = spec.SlotsNeeded();
  std::string attempts, until;
  std::set<std::string> whys;
  if (auto it = jobs_.find(job_id); it != jobs_.end()) {
    std::set<int> numbers;
    for (const auto& [host, e] : it->second) {
      if (!excluded.count(host)) continue;
      numbers.insert(e.attempt);
      whys.insert(e.why);
      until = e.until_text;  // the latest one shown (entries of one loss share it)
    }
    for (int n : numbers) attempts += (attempts.empty() ? "" : ", ") + std::to_string(n);
  }
  std::string why = "waiting: host" + std::string(excluded.size() > 1 ? "s " : " ") + Join(excluded) +
                    " excluded after " + (whys.empty() ? std::string("node lost") : Join(whys)) +
                    (attempts.empty() ? "" : " in attempt " + attempts) + "; needs " + SlotCount(need, pool);
  const int elsewhere = slots.TotalExcept(pool, excluded);
  if (!slots.CouldEverFit(spec, excluded)) {
    return why + ", the other hosts have " + std::to_string(elsewhere) + " (" + Join(excluded) +
           (excluded.size() > 1 ? " are" : " is") + " tried again" + (until.empty() ? "" : " at " + until) + ")";
  }
  int free = 0;
  for (size_t i = 0; i < slots.hosts().size(); ++i) {
    const HostConfig& h = slots.hosts()[i];
    if (excluded.count(h.name)) continue;
    free += pool == Pool::kGpu ? static_cast<int>(h.gpus.size() - slots.GpusUsed(i).size())
                               : std::max(0, h.cpus - slots.CpusUsed(i));
  }
  return why + ", " + std::to_string(free) + " of " + std::to_string(elsewhere) + " free on the other hosts";
}

}  // namespace gantry::coordinator
