// MetricsSpool: the points a rank has published but the monitor has not yet
// acknowledged as durable, in sequence order, bounded.
//
// Every accepted point gets the next sequence number (1, 2, 3, ...) of its
// (job, attempt, rank) and stays here until an ack covers it: Ack(s) says
// the monitor committed every point with seq <= s. The oldest
// `memory_points` entries are held in memory; beyond that, new entries are
// appended to a spill file (`spill_path`), and read back in order as acks
// free memory. Beyond `max_points` entries in all, Add() refuses the point
// (the caller counts it as dropped): refusing the newest, never evicting an
// older one, keeps the sequence free of holes, so the monitor's
// "everything up to s" acks keep advancing. Without a spill path, memory is
// the whole bound.
//
// Sending walks a cursor over the memory part: NextToSend() is the oldest
// entry not sent since the last Rewind(), MarkSent() moves past it. Rewind()
// puts the cursor back to the oldest unacknowledged entry, so everything
// not acknowledged is sent again, in sequence order (after a monitor
// restart lost points in flight).
//
// Ownership: owns the spill file (created on the first spill, removed by
// the destructor). Thread safety: one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "common/status.h"

namespace gantry::worker {

struct MetricsSpoolOptions {
  // Entries kept in memory (a point's frame is ~200-400 bytes).
  size_t memory_points = 4096;
  // Entries in all, memory and file together.
  size_t max_points = 200000;
  // Where entries beyond memory_points go; empty = no spill (the bound is
  // then memory_points).
  std::string spill_path;
};

class MetricsSpool {
 public:
  explicit MetricsSpool(MetricsSpoolOptions options);
  ~MetricsSpool();
  MetricsSpool(const MetricsSpool&) = delete;
  MetricsSpool& operator=(const MetricsSpool&) = delete;

  // The seq the next Add() gives its entry.
  int64_t next_seq() const { return next_seq_; }
  // True when Add() would refuse.
  bool Full() const;
  // Appends the frame of point next_seq() (encoded with that seq). Returns
  // false (nothing stored, next_seq unchanged) when full, or when the spill
  // file cannot be written.
  bool Add(std::string frame);

  // The monitor holds every seq <= `seq`: forgets those entries. Returns
  // true if that removed anything. Acks older than the last one are ignored.
  bool Ack(int64_t seq);
  int64_t acked() const { return acked_; }

  // The oldest entry not yet sent (since the last Rewind), or nullptr.
  const std::string* NextToSend() const;
  int64_t NextToSendSeq() const;  // its seq; 0 when none
  void MarkSent();
  // Everything unacknowledged is to be sent again, oldest first.
  void Rewind();

  size_t size() const { return memory_.size() + spilled_; }
  bool empty() const { return size() == 0; }
  size_t in_memory() const { return memory_.size(); }
  size_t spilled() const { return spilled_; }
  // Entries sent but not acknowledged.
  bool HasUnackedSent() const { return cursor_ > 0; }
  // The last error of the spill file, if any (for a log line).
  const Status& spill_status() const { return spill_status_; }

 private:
  struct Entry {
    int64_t seq;
    std::string frame;
  };
  bool Spill(const Entry& e);
  void Refill();  // moves spilled entries into free memory, in order

  MetricsSpoolOptions options_;
  std::deque<Entry> memory_;  // seqs ascending, all > acked_
  size_t cursor_ = 0;         // memory_[cursor_] is the next to send
  int64_t next_seq_ = 1;
  int64_t acked_ = 0;
  // Spill file: records [seq u64][length u32][frame] appended at
  // write_off_, read back from read_off_; spilled_ records between them.
  int fd_ = -1;
  uint64_t read_off_ = 0;
  uint64_t write_off_ = 0;
  size_t spilled_ = 0;
  Status spill_status_;
};

}  // namespace gantry::worker
