#include "monitor/ingest_acks.h"

#include <spdlog/spdlog.h>

namespace gantry::monitor {

bool SeqSet::Insert(int64_t seq) {
  if (seq <= 0 || Contains(seq)) return false;
  if (seq != floor_ + 1) {
    above_.insert(seq);
    return true;
  }
  floor_ = seq;
  while (!above_.empty() && *above_.begin() == floor_ + 1) {
    floor_ = *above_.begin();
    above_.erase(above_.begin());
  }
  return true;
}

void SeqSet::Load(const StoredSeqs& stored) {
  if (stored.floor > floor_) {
    floor_ = stored.floor;
    above_.erase(above_.begin(), above_.upper_bound(floor_));
  }
  for (int64_t seq : stored.above) Insert(seq);
  while (!above_.empty() && *above_.begin() == floor_ + 1) {
    floor_ = *above_.begin();
    above_.erase(above_.begin());
  }
}

IngestAcks::Sender& IngestAcks::Get(const SenderKey& key) {
  auto it = senders_.find(key);
  if (it != senders_.end()) return it->second;
  if (senders_.size() >= max_senders_) {
    for (auto i = senders_.begin(); i != senders_.end();) {
      const Sender& s = i->second;
      i = s.ack_due || !(s.received == s.durable) ? std::next(i) : senders_.erase(i);
    }
  }
  Sender& s = senders_[key];
  auto seqs = loader_ ? loader_(key) : Result<StoredSeqs>(StoredSeqs{});
  if (!seqs.ok()) {
    // The store's unique index still keeps repeats out of the history.
    spdlog::warn("ingest: cannot read the stored seqs of {} attempt {} rank {}: {}", key.job_id, key.attempt,
                 key.rank, seqs.status().ToString());
    return s;
  }
  s.received.Load(*seqs);
  s.durable.Load(*seqs);
  return s;
}

bool IngestAcks::IsRepeat(const SenderKey& key, int64_t seq, const std::string& routing_id) {
  Sender& s = Get(key);
  s.routing_id = routing_id;
  s.ack_due = true;
  return s.received.Contains(seq);
}

void IngestAcks::Received(const SenderKey& key, int64_t seq) { Get(key).received.Insert(seq); }

void IngestAcks::Committed(const SenderKey& key, int64_t seq) {
  Sender& s = Get(key);
  s.received.Insert(seq);
  const int64_t floor = s.durable.floor();
  s.durable.Insert(seq);
  if (s.durable.floor() != floor) s.ack_due = true;
}

std::vector<DueAck> IngestAcks::TakeDue() {
  std::vector<DueAck> out;
  for (auto& [key, s] : senders_) {
    if (!s.ack_due) continue;
    s.ack_due = false;
    if (s.routing_id.empty()) continue;  // a frame fed in directly (tests)
    out.push_back({s.routing_id, {key.job_id, key.attempt, key.rank, s.durable.floor()}});
  }
  return out;
}

}  // namespace gantry::monitor
