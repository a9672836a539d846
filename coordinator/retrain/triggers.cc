#include "coordinator/retrain/triggers.h"

#include <algorithm>

namespace gantry::coordinator {

const char* TriggerKindName(TriggerKind kind) {
  switch (kind) {
    case TriggerKind::kManual: return "manual";
    case TriggerKind::kCron: return "cron";
    case TriggerKind::kNewData: return "new_data";
    case TriggerKind::kDrift: return "drift";
    case TriggerKind::kMetric: return "metric";
  }
  return "unknown";
}

std::vector<DataFile> NewDataTracker::Pending(const std::vector<DataFile>& listing) const {
  std::vector<DataFile> out;
  for (const DataFile& f : listing) {
    if (!consumed_.count(f.name)) out.push_back(f);
  }
  std::sort(out.begin(), out.end(), [](const DataFile& a, const DataFile& b) { return a.name < b.name; });
  return out;
}

std::optional<Trigger> NewDataTracker::Check(const std::vector<DataFile>& listing,
                                             std::chrono::system_clock::time_point now) const {
  auto pending = Pending(listing);
  if (pending.empty()) return std::nullopt;
  int64_t samples = 0;
  for (const DataFile& f : pending) samples += f.samples;
  const auto files = static_cast<int64_t>(pending.size());
  const bool by_files = config_.min_files > 0 && files >= config_.min_files;
  const bool by_samples = config_.min_samples > 0 && samples >= config_.min_samples;
  if (!by_files && !by_samples) return std::nullopt;
  Trigger t;
  t.kind = TriggerKind::kNewData;
  t.at = now;
  t.detail = std::to_string(files) + " new file" + (files == 1 ? "" : "s") + ", " + std::to_string(samples) +
             " samples";
  return t;
}

void NewDataTracker::Consume(const std::vector<DataFile>& files) {
  for (const DataFile& f : files) consumed_.insert(f.name);
}

std::optional<std::vector<Trigger>> RunCoalescer::Start() {
  if (running_ || pending_.empty()) return std::nullopt;
  running_ = true;
  std::vector<Trigger> out;
  out.swap(pending_);
  return out;
}

}  // namespace gantry::coordinator
