#include "monitor/monitor_service.h"

#include <spdlog/spdlog.h>

#include "common/curve.h"
#include "common/ingest_wire.h"
#include "monitor/monitor_api.h"

namespace gantry::monitor {
namespace {

// ":0" means "any free port" as for RpcServer; ZeroMQ spells it ":*".
Result<std::string> BindSocket(zmq::socket_t& socket, std::string addr, const char* what) {
  if (addr.size() > 2 && addr.compare(addr.size() - 2, 2, ":0") == 0) addr.back() = '*';
  // CURVE when the process runs with it; never beyond loopback without it.
  GANTRY_RETURN_IF_ERROR(CheckBindAllowed(addr, ProcessCurveEnabled(), what));
  GANTRY_RETURN_IF_ERROR(MakeCurveServer(socket));
  try {
    socket.bind(addr);
    return socket.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Status::Unavailable(std::string("cannot bind ") + what + " " + addr + ": " + e.what() +
                               " (is another Gantry service using this port?)");
  }
}

}  // namespace

MonitorService::MonitorService(zmq::context_t& ctx, MetricsStore store, const Clock& clock,
                               MonitorOptions options)
    : ingest_(ctx, zmq::socket_type::router),
      feed_(ctx, zmq::socket_type::pub),
      store_(std::move(store)),
      writer_(std::make_unique<IngestWriter>(store_, /*threaded=*/false)),
      buffer_(clock, options.buffer),
      options_(std::move(options)),
      acks_([this](const SenderKey& k) { return store_.Seqs(k.job_id, k.attempt, k.rank); }) {
  ingest_.set(zmq::sockopt::maxmsgsize, options_.max_ingest_bytes);
  ingest_.set(zmq::sockopt::linger, 0);
  feed_.set(zmq::sockopt::linger, 0);
}

MonitorService::~MonitorService() {
  // The writer's last try happens in its destructor; what it commits there
  // is not acked (no one is served any more) and is re-sent and dropped as a
  // repeat by the next monitor.
  writer_.reset();
}

void MonitorService::WriteOnThread(MetricsStore writer) {
  writer_.reset();  // the inline one: nothing submitted yet
  writer_store_ = std::make_unique<MetricsStore>(std::move(writer));
  writer_ = std::make_unique<IngestWriter>(*writer_store_, /*threaded=*/true);
}

Status MonitorService::Bind() {
  GANTRY_ASSIGN_OR_RETURN(ingest_endpoint_, BindSocket(ingest_, options_.ingest_bind, "ingest"));
  GANTRY_ASSIGN_OR_RETURN(feed_endpoint_, BindSocket(feed_, options_.feed_bind, "feed"));
  return Status::Ok();
}

void MonitorService::Attach(RpcServer& server) {
  RegisterApiHandlers(server, *this);
  server.AddSocket(&ingest_, [this] { DrainIngest(kMaxFramesPerWakeup); });
  if (writer_->fd() >= 0) server.AddFd(writer_->fd(), [this] {
      writer_->ClearSignal();
      OnCommitted();
    });
  server.OnTick([this] { Tick(); });
}

void MonitorService::DrainIngest(size_t max_frames) {
  for (size_t i = 0; i < max_frames; ++i) {
    // ROUTER: [routing id of the sender's connection][the message].
    zmq::message_t routing_id;
    if (!ingest_.recv(routing_id, zmq::recv_flags::dontwait)) return;
    zmq::message_t frame;
    if (!routing_id.more() || !ingest_.recv(frame, zmq::recv_flags::dontwait)) continue;
    if (frame.more()) {
      // Ingest messages are single frames: drop the whole multipart message.
      while (frame.more() && ingest_.recv(frame, zmq::recv_flags::dontwait)) {
      }
      Dropped();
      spdlog::debug("dropped a multipart ingest message");
      continue;
    }
    OnIngestFrame(frame.to_string_view(), routing_id.to_string());
    Tick();
  }
}

void MonitorService::OnIngestFrame(std::string_view frame, const std::string& routing_id) {
  auto msg = ParseIngestFrame(frame);
  if (!msg.ok()) {
    Dropped();
    spdlog::debug("dropped ingest frame of {} bytes: {}", frame.size(), msg.status().message());
    return;
  }
  // A sequenced point received before (a sender re-sent what was not yet
  // acknowledged) is acknowledged again, and seen by no one.
  const auto* point = std::get_if<MetricsPoint>(&msg->record);
  const int64_t seq = point ? point->seq : 0;
  SenderKey sender;
  if (seq > 0) {
    sender = {point->job_id, point->attempt, point->rank};
    if (acks_.IsRepeat(sender, seq, routing_id)) {
      ++points_repeated_;
      return;
    }
  }
  // Serving reports and samples are not points of a job: the observers keep
  // them (the serving view, the drift windows); reports are republished on
  // the feed, samples (bulky rows) are not.
  if (msg->serving()) {
    ++(msg->type == kServingMetricsType ? serving_reports_ : serving_samples_);
    for (IngestObserver* o : observers_) o->OnMessage(*msg);
    if (msg->type == kServingMetricsType) Publish(msg->Topic(), msg->FeedPayload());
    return;
  }
  // Observers and topic/payload first: buffering moves the record out.
  const std::string topic = msg->Topic();
  const std::string payload = msg->FeedPayload();
  const bool room = buffer_.size() + writer_->pending() < options_.buffer.max_buffered;
  if (room) {
    for (IngestObserver* o : observers_) o->OnMessage(*msg);
  }
  bool buffered = room && (std::holds_alternative<MetricsPoint>(msg->record)
                               ? buffer_.Add(std::move(std::get<MetricsPoint>(msg->record)))
                               : buffer_.Add(std::move(std::get<JobEvent>(msg->record))));
  if (!buffered) {
    Dropped();
    return;
  }
  ++(msg->type == kMetricsType ? points_ingested_ : events_ingested_);
  if (seq > 0) {
    acks_.Received(sender, seq);
    buffered_seqs_.emplace_back(std::move(sender), seq);
  }
  Publish(topic, payload);
}

void MonitorService::Publish(const std::string& topic, const std::string& payload) {
  // PUB never blocks: a slow subscriber loses messages past its HWM rather
  // than stalling ingest.
  try {
    (void)feed_.send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    (void)feed_.send(zmq::buffer(payload), zmq::send_flags::dontwait);
  } catch (const zmq::error_t& e) {
    spdlog::warn("feed publish failed: {}", e.what());
  }
}

void MonitorService::Dropped() {
  ++messages_dropped_;
  for (IngestObserver* o : observers_) o->OnDropped();
}

void MonitorService::Tick() {
  if (buffer_.Due()) SubmitBuffer();
  writer_->Retry();  // inline: a batch whose write failed
  OnCommitted();
  // Acks say what is committed: with nothing waiting, also the acks of
  // repeats (OnCommitted sent the others).
  if (buffer_.empty() && writer_->pending() == 0) SendAcks();
  for (IngestObserver* o : observers_) o->OnTick();
}

void MonitorService::SubmitBuffer() {
  if (buffer_.empty()) return;
  IngestBatch batch = buffer_.Take();
  batch.seqs.swap(buffered_seqs_);
  writer_->Submit(std::move(batch));
}

void MonitorService::OnCommitted() {
  std::vector<SenderSeq> committed = writer_->TakeCommitted();
  if (committed.empty()) return;
  for (const auto& [sender, seq] : committed) acks_.Committed(sender, seq);
  SendAcks();
}

void MonitorService::SendAcks() {
  for (const DueAck& a : acks_.TakeDue()) {
    const std::string frame = EncodeIngestAck(a.ack);
    try {
      // ROUTER drops a frame for a sender that is gone; it acks again later.
      if (ingest_.send(zmq::buffer(a.routing_id), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        (void)ingest_.send(zmq::buffer(frame), zmq::send_flags::dontwait);
      }
    } catch (const zmq::error_t& e) {
      spdlog::debug("ingest ack to {} failed: {}", a.ack.job_id, e.what());
    }
  }
}

Status MonitorService::Flush() {
  SubmitBuffer();
  Status s = writer_->WaitIdle();
  OnCommitted();
  return s;
}

Status MonitorService::Shutdown() {
  DrainIngest(options_.buffer.max_buffered);
  return Flush();
}

Status MonitorService::CheckKnown(const std::string& job_id, const char* request) {
  GANTRY_ASSIGN_OR_RETURN(bool known, store_.HasJob(job_id));
  if (known) return Status::Ok();
  return Status::NotFound(std::string(request) + ": the monitor has no metrics or events of job '" + job_id +
                          "' (a job is known once a point or state event of it arrived)");
}

Result<std::vector<MetricsPoint>> MonitorService::GetMetrics(const MetricsQuery& query) {
  if (query.job_id.empty()) return Status::InvalidArgument("get_metrics: field 'job_id' is empty");
  if (query.limit < 1) {
    return Status::InvalidArgument("get_metrics: limit must be >= 1 (got " + std::to_string(query.limit) + ")");
  }
  // A query sees everything received so far.
  GANTRY_RETURN_IF_ERROR(Flush().WithContext("get_metrics"));
  GANTRY_ASSIGN_OR_RETURN(auto points, store_.Points(query.job_id, query.after_step, query.limit));
  // A known job may have no points (yet, or after after_step).
  if (points.empty()) GANTRY_RETURN_IF_ERROR(CheckKnown(query.job_id, "get_metrics"));
  return points;
}

Result<std::vector<JobEvent>> MonitorService::GetEvents(const std::string& job_id) {
  if (job_id.empty()) return Status::InvalidArgument("get_events: field 'job_id' is empty");
  GANTRY_RETURN_IF_ERROR(Flush().WithContext("get_events"));
  GANTRY_ASSIGN_OR_RETURN(auto events, store_.Events(job_id));
  if (events.empty()) GANTRY_RETURN_IF_ERROR(CheckKnown(job_id, "get_events"));
  return events;
}

MonitorStats MonitorService::Stats() const {
  MonitorStats s;
  s.points_ingested = points_ingested_;
  s.events_ingested = events_ingested_;
  s.messages_dropped = messages_dropped_;
  s.points_repeated = points_repeated_;
  s.serving_reports = serving_reports_;
  s.serving_samples = serving_samples_;
  s.buffered = static_cast<int64_t>(buffer_.size() + writer_->pending());
  return s;
}

}  // namespace gantry::monitor
