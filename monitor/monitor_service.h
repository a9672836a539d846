// MonitorService: the monitor's sockets and wire API around a MetricsStore.
//
// Sockets (all bound by Bind(); ":0" or ":*" picks a free port):
//   ingest  ROUTER, single-frame messages from DEALER senders
//           (ingest_message.h); frames above max_ingest_bytes are dropped by
//           ZeroMQ (ZMQ_MAXMSGSIZE). Senders of sequenced metrics get
//           `ingest_ack` frames back on the same connection (ingest_acks.h).
//   feed    PUB; every valid ingest message is republished at once as
//           [topic "job/<job_id>", ToMsgpack({type, body})].
//   api     the RpcServer passed to Attach(); its handlers (monitor_api.h)
//           turn get_metrics, get_events and stats into the typed calls
//           GetMetrics(), GetEvents() and Stats() below.
//
// A job is known to the monitor once the store holds a point or a state
// event of it; queries about any other job are not_found.
//
// Life of an ingest message:
//   1. the ingest socket is readable: Attach()'s callback drains up to
//      kMaxFramesPerWakeup frames so the api is never starved;
//   2. each frame is parsed; a malformed one is counted and dropped; a
//      sequenced point received before is counted (points_repeated) and
//      dropped, unseen by the feed and the observers;
//   3. a valid one is published on the feed, then buffered (ingest_buffer.h);
//   4. the buffer goes to the IngestWriter (ingest_writer.h) as one batch
//      when due (checked after each frame and on every server tick), before
//      any query, and at Shutdown(); the writer commits it, inline or on its
//      own thread (WriteOnThread());
//   5. after each commit (and when nothing is waiting), every sender of
//      sequenced points owed an ack gets one: the highest seq up to which
//      all its points are committed. Nothing is acked before its commit.
//
// Ownership: owns its sockets, stores, buffer and writer; the zmq context
// and the Clock must outlive it. Thread safety: everything runs on the
// thread that runs the RpcServer (construction, WriteOnThread() and Bind()
// may happen on another one before Serve() starts), except the writer
// thread's SQLite writes.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "common/clock.h"
#include "common/rpc.h"
#include "monitor/ingest_acks.h"
#include "monitor/ingest_buffer.h"
#include "monitor/ingest_writer.h"
#include "monitor/metrics_store.h"

namespace gantry::monitor {

// Largest ingest frame: a metrics point is a few hundred bytes, so 1 MiB
// leaves room for wide points while bounding what a bad sender can push.
inline constexpr int64_t kMaxIngestBytes = 1 << 20;
// Frames handled per PULL wakeup before the api socket gets a turn.
inline constexpr size_t kMaxFramesPerWakeup = 1000;
// RpcServer tick for the api server: bounds how late an age-due flush runs.
inline constexpr std::chrono::milliseconds kFlushTick{10};

// get_metrics limit when the request names none.
inline constexpr int64_t kDefaultMetricsLimit = 100000;

// A get_metrics query: points of job_id with step > after_step, at most
// `limit` (>= 1) of them.
struct MetricsQuery {
  std::string job_id;
  int64_t after_step = -1;
  int64_t limit = kDefaultMetricsLimit;
};

// Counters since start.
struct MonitorStats {
  int64_t points_ingested = 0;
  int64_t events_ingested = 0;
  int64_t messages_dropped = 0;  // malformed, multipart or over the buffer bound
  int64_t points_repeated = 0;   // sequenced points received again (dropped)
  int64_t serving_reports = 0;   // serving_metrics messages accepted
  int64_t serving_samples = 0;   // serving_samples messages accepted
  int64_t buffered = 0;          // received, not yet written
};

// Told about every accepted ingest message and every tick, on the RpcServer
// thread (the HTTP read model, the alert engine). Must not block.
class IngestObserver {
 public:
  virtual ~IngestObserver() = default;
  virtual void OnMessage(const IngestMessage& msg) = 0;
  virtual void OnDropped() {}
  virtual void OnTick() {}
};

struct MonitorOptions {
  std::string ingest_bind = "tcp://127.0.0.1:7602";
  std::string feed_bind = "tcp://127.0.0.1:7603";
  int64_t max_ingest_bytes = kMaxIngestBytes;
  IngestBufferOptions buffer;
};

class MonitorService {
 public:
  MonitorService(zmq::context_t& ctx, MetricsStore store, const Clock& clock, MonitorOptions options);
  ~MonitorService();
  MonitorService(const MonitorService&) = delete;
  MonitorService& operator=(const MonitorService&) = delete;

  // Moves the SQLite writes to a thread of their own that owns `writer` (a
  // second connection to the same file); the constructor's store then
  // serves only reads (queries, the acks' loader). Call before Attach().
  void WriteOnThread(MetricsStore writer);

  // Binds ingest and feed; unavailable (naming the address) on failure.
  Status Bind();
  const std::string& ingest_endpoint() const { return ingest_endpoint_; }
  const std::string& feed_endpoint() const { return feed_endpoint_; }

  // Registers the api handlers, the ingest socket and the flush tick.
  void Attach(RpcServer& server);

  // `observer` (not owned) must outlive the service; call before Serve().
  void AddObserver(IngestObserver* observer) { observers_.push_back(observer); }
  // Publishes one message on the feed (RpcServer thread only).
  void Publish(const std::string& topic, const std::string& payload);

  // Steps 2-3 for one frame from `routing_id` (empty: fed in directly, no
  // ack is sent). Public so tests can feed frames directly.
  void OnIngestFrame(std::string_view frame, const std::string& routing_id = "");
  // Flushes when the buffer is due (the server tick calls this).
  void Tick();
  // Writes the buffer now and waits until everything received is committed.
  Status Flush();
  // After Serve() returns: reads what is already queued on the ingest socket
  // and flushes, so nothing received is lost on a clean stop.
  Status Shutdown();

  // Both see everything received so far (they flush first). invalid_argument
  // for an empty job_id or a limit below 1; not_found for a job the store
  // has neither points nor events of.
  Result<std::vector<MetricsPoint>> GetMetrics(const MetricsQuery& query);
  Result<std::vector<JobEvent>> GetEvents(const std::string& job_id);
  MonitorStats Stats() const;

 private:
  void DrainIngest(size_t max_frames);
  // not_found unless the store knows `job_id`; `request` prefixes errors.
  Status CheckKnown(const std::string& job_id, const char* request);
  void Dropped();
  // Hands the buffer to the writer as one batch.
  void SubmitBuffer();
  // Marks what the writer committed as durable in acks_, then acks it.
  void OnCommitted();
  void SendAcks();

  zmq::socket_t ingest_;
  zmq::socket_t feed_;
  MetricsStore store_;
  std::unique_ptr<MetricsStore> writer_store_;  // WriteOnThread(): the writer thread's
  std::unique_ptr<IngestWriter> writer_;        // declared after the stores it writes
  IngestBuffer buffer_;
  MonitorOptions options_;
  std::string ingest_endpoint_;
  std::string feed_endpoint_;
  std::vector<IngestObserver*> observers_;
  IngestAcks acks_;
  // Sequenced points in buffer_, committed to acks_ when it is written.
  std::vector<SenderSeq> buffered_seqs_;
  RpcServer* server_ = nullptr;  // Attach()'s, for the writer's fd
  int64_t points_ingested_ = 0;
  int64_t events_ingested_ = 0;
  int64_t messages_dropped_ = 0;
  int64_t points_repeated_ = 0;
  int64_t serving_reports_ = 0;
  int64_t serving_samples_ = 0;
};

}  // namespace gantry::monitor
