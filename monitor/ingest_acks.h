// IngestAcks: per sender (job_id, attempt, rank), which sequenced metrics
// points the monitor has received and which are durable, so that repeats
// are dropped before anyone sees them and senders learn what they may
// forget (docs/protocol.md, "ingest_ack").
//
// For each sender two SeqSets: `received` (buffered or written) and
// `durable` (committed to the MetricsStore). A sender seen for the first
// time since start is loaded from the store (what a previous monitor
// process committed). The ack for a sender is durable.floor(): every seq in
// 1..floor is committed. Acks are owed to a sender after any sequenced
// frame from it (also a repeat) and whenever its durable floor moves, and go
// to the ZeroMQ routing id its last frame came from.
//
// Memory: beyond max_senders, senders with no ack owed and nothing in
// flight (received == durable) are forgotten (and reloaded from the store if
// they send again).
//
// Thread safety: one thread (the monitor's RpcServer thread).
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/ingest_wire.h"
#include "common/status.h"
#include "monitor/metrics_store.h"

namespace gantry::monitor {

// The sequence numbers of one sender seen so far: 1..floor() and some above.
class SeqSet {
 public:
  // False when `seq` was already present.
  bool Insert(int64_t seq);
  bool Contains(int64_t seq) const { return seq <= floor_ || above_.count(seq) > 0; }
  int64_t floor() const { return floor_; }
  // Adds what a store holds (1..floor and `above`).
  void Load(const StoredSeqs& stored);
  // True when both hold the same seqs.
  bool operator==(const SeqSet& o) const { return floor_ == o.floor_ && above_ == o.above_; }

 private:
  int64_t floor_ = 0;
  std::set<int64_t> above_;  // all > floor_ + 1
};

struct SenderKey {
  std::string job_id;
  int64_t attempt = 0;
  int64_t rank = 0;
  auto operator<=>(const SenderKey&) const = default;
};

// One ack to send: [routing_id, EncodeIngestAck(ack)].
struct DueAck {
  std::string routing_id;
  IngestAck ack;
};

class IngestAcks {
 public:
  // Reads the seqs a sender has in the store (MetricsStore::Seqs).
  using Loader = std::function<Result<StoredSeqs>(const SenderKey&)>;

  explicit IngestAcks(Loader loader, size_t max_senders = 4096)
      : loader_(std::move(loader)), max_senders_(max_senders) {}

  // A sequenced point arrived from `routing_id`: true when it was received
  // before (drop it). Either way the sender is owed an ack.
  bool IsRepeat(const SenderKey& key, int64_t seq, const std::string& routing_id);
  // The point was accepted (buffered for the store).
  void Received(const SenderKey& key, int64_t seq);
  // The point is committed; an ack is owed when the floor moved.
  void Committed(const SenderKey& key, int64_t seq);
  // The acks owed, each once; clears them.
  std::vector<DueAck> TakeDue();

  size_t senders() const { return senders_.size(); }

 private:
  struct Sender {
    SeqSet received;
    SeqSet durable;
    std::string routing_id;
    bool ack_due = false;
  };
  Sender& Get(const SenderKey& key);

  Loader loader_;
  size_t max_senders_;
  std::map<SenderKey, Sender> senders_;
};

}  // namespace gantry::monitor
