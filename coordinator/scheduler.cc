#include "coordinator/scheduler.h"

#include <algorithm>

namespace gantry::coordinator {

const char* PoolName(Pool p) { return p == Pool::kGpu ? "gpu" : "cpu"; }

std::string SlotCount(int n, Pool p) {
  return std::to_string(n) + " " + PoolName(p) + " slot" + (n == 1 ? "" : "s");
}

std::vector<std::string> Placement::GpuLists() const {
  std::vector<std::string> out;
  if (pool != Pool::kGpu) return out;
  for (const auto& r : ranks) {
    std::string list;
    for (int g : r.gpus) list += (list.empty() ? "" : ",") + std::to_string(g);
    out.push_back(list);
  }
  return out;
}

std::vector<std::string> Placement::Hosts() const {
  std::vector<std::string> out;
  for (const auto& r : ranks) out.push_back(r.host);
  return out;
}

json Placement::ToJson() const {
  json ranks_j = json::array();
  for (const auto& r : ranks) ranks_j.push_back({{"host", r.host}, {"gpus", r.gpus}});
  return {{"pool", PoolName(pool)}, {"slots_per_rank", slots_per_rank}, {"ranks", ranks_j}};
}

Result<Placement> Placement::FromJson(const json& j) {
  try {
    Placement p;
    p.pool = j.at("pool").get<std::string>() == "gpu" ? Pool::kGpu : Pool::kCpu;
    p.slots_per_rank = j.at("slots_per_rank").get<int>();
    for (const auto& r : j.at("ranks")) p.ranks.push_back({r.at("host").get<std::string>(), r.at("gpus").get<std::vector<int>>()});
    return p;
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("placement record: ") + e.what());
  }
}

SlotMap::SlotMap(std::vector<HostConfig> hosts)
    : hosts_(std::move(hosts)), cpus_used_(hosts_.size(), 0), gpus_used_(hosts_.size()) {}

int SlotMap::Total(Pool p) const {
  int n = 0;
  for (const auto& h : hosts_) n += p == Pool::kGpu ? static_cast<int>(h.gpus.size()) : h.cpus;
  return n;
}

int SlotMap::Used(Pool p) const {
  int n = 0;
  for (size_t i = 0; i < hosts_.size(); ++i) {
    n += p == Pool::kGpu ? static_cast<int>(gpus_used_[i].size()) : cpus_used_[i];
  }
  return n;
}

int SlotMap::HostIndex(const std::string& name) const {
  for (size_t i = 0; i < hosts_.size(); ++i) {
    if (hosts_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

std::optional<Placement> SlotMap::PlaceOn(const JobSpec& spec, const std::vector<int>& cpus_used,
                                          const std::vector<std::set<int>>& gpus_used,
                                          const std::set<std::string>& excluded) const {
  Placement p;
  p.pool = PoolOf(spec);
  p.slots_per_rank = spec.resources.slots_per_worker;
  const int per = p.slots_per_rank;
  int left = spec.resources.workers;
  for (size_t i = 0; i < hosts_.size() && left > 0; ++i) {
    const HostConfig& h = hosts_[i];
    if (excluded.count(h.name)) continue;
    if (p.pool == Pool::kCpu) {
      int fit = std::min(left, std::max(0, h.cpus - cpus_used[i]) / per);
      for (int r = 0; r < fit; ++r) p.ranks.push_back({h.name, {}});
      left -= fit;
    } else {
      std::vector<int> free;
      for (int g : h.gpus) {
        if (!gpus_used[i].count(g)) free.push_back(g);
      }
      size_t next = 0;
      while (left > 0 && free.size() - next >= static_cast<size_t>(per)) {
        RankPlacement rp{h.name, {}};
        for (int k = 0; k < per; ++k) rp.gpus.push_back(free[next++]);
        p.ranks.push_back(std::move(rp));
        --left;
      }
    }
  }
  if (left > 0) return std::nullopt;
  return p;
}

std::optional<Placement> SlotMap::Place(const JobSpec& spec, const std::set<std::string>& excluded) const {
  return PlaceOn(spec, cpus_used_, gpus_used_, excluded);
}

bool SlotMap::CouldEverFit(const JobSpec& spec, const std::set<std::string>& excluded) const {
  return PlaceOn(spec, std::vector<int>(hosts_.size(), 0), std::vector<std::set<int>>(hosts_.size()), excluded)
      .has_value();
}

int SlotMap::TotalExcept(Pool p, const std::set<std::string>& excluded) const {
  int n = 0;
  for (const auto& h : hosts_) {
    if (!excluded.count(h.name)) n += p == Pool::kGpu ? static_cast<int>(h.gpus.size()) : h.cpus;
  }
  return n;
}

void SlotMap::Take(const Placement& p) {
  for (const auto& r : p.ranks) {
    int i = HostIndex(r.host);
    if (i < 0) continue;
    if (p.pool == Pool::kCpu) {
      cpus_used_[i] += p.slots_per_rank;
    } else {
      for (int g : r.gpus) gpus_used_[i].insert(g);
    }
  }
}

void SlotMap::Release(const Placement& p) {
  for (const auto& r : p.ranks) {
    int i = HostIndex(r.host);
    if (i < 0) continue;
    if (p.pool == Pool::kCpu) {
      cpus_used_[i] = std::max(0, cpus_used_[i] - p.slots_per_rank);
    } else {
      for (int g : r.gpus) gpus_used_[i].erase(g);
    }
  }
}

int Forecast::FreeAt(double t) const {
  int used = 0;
  for (const Hold& h : holds_) {
    if (h.start <= t && t < h.end) used += h.slots;
  }
  return total_ - used;
}

double Forecast::EarliestStart(int slots, double duration) const {
  std::vector<double> times = {0};
  for (const Hold& h : holds_) {
    if (h.end != kNever && h.end > 0) times.push_back(h.end);
  }
  std::sort(times.begin(), times.end());
  for (double t : times) {
    const double until = duration == kNever ? kNever : t + duration;
    bool fits = FreeAt(t) >= slots;
    // Free slots only shrink where a planned hold starts.
    for (const Hold& h : holds_) {
      if (!fits) break;
      if (h.start > t && h.start < until && FreeAt(h.start) < slots) fits = false;
    }
    if (fits) return t;
  }
  return kNever;
}

bool Forecast::DelaysHead(int head_slots, int slots, double end) const {
  std::vector<double> times = {0};
  for (const Hold& h : holds_) {
    if (h.end != kNever && h.end > 0) times.push_back(h.end);
    if (h.start > 0 && h.start != kNever) times.push_back(h.start);
  }
  for (double t : times) {
    if (t >= end) continue;
    const int sure = FreeAt(t);
    int maybe = sure;  // if every hold without an end ended right now
    for (const Hold& h : holds_) {
      if (h.end == kNever && h.start <= t) maybe += h.slots;
    }
    if (maybe >= head_slots && sure < head_slots + slots) return true;
  }
  return false;
}

std::vector<Candidate> ChooseVictims(std::vector<Candidate> candidates, int priority, int need, int free) {
  candidates.erase(std::remove_if(candidates.begin(), candidates.end(),
                                  [priority](const Candidate& c) { return c.priority >= priority; }),
                   candidates.end());
  std::stable_sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    if (a.priority != b.priority) return a.priority < b.priority;
    return a.running_for < b.running_for;
  });
  std::vector<Candidate> chosen;
  int freed = free;
  for (const Candidate& c : candidates) {
    if (freed >= need) break;
    chosen.push_back(c);
    freed += c.slots;
  }
  if (freed < need) return {};
  // Spare, from the most valuable down, any victim the others make unnecessary.
  for (size_t i = chosen.size(); i-- > 0;) {
    if (freed - chosen[i].slots >= need) {
      freed -= chosen[i].slots;
      chosen.erase(chosen.begin() + static_cast<long>(i));
    }
  }
  return chosen;
}

}  // namespace gantry::coordinator
