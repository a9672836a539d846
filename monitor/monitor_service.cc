#include "monitor/monitor_service.h"

#include <spdlog/spdlog.h>

namespace gantry::monitor {
namespace {

// ":0" means "any free port" as for RpcServer; ZeroMQ spells it ":*".
Result<std::string> BindSocket(zmq::socket_t& socket, std::string addr, const char* what) {
  if (addr.size() > 2 && addr.compare(addr.size() - 2, 2, ":0") == 0) addr.back() = '*';
  try {
    socket.bind(addr);
    return socket.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Status::Unavailable(std::string("cannot bind ") + what + " " + addr + ": " + e.what() +
                               " (is another Gantry service using this port?)");
  }
}

Result<std::string> JobId(const json& body, const char* request) {
  auto id = GetString(body, "job_id");
  if (!id.ok()) return id.status().WithContext(request);
  if (id->empty()) return Status::InvalidArgument(std::string(request) + ": field 'job_id' is empty");
  return id;
}

}  // namespace

MonitorService::MonitorService(zmq::context_t& ctx, MetricsStore store, const Clock& clock,
                               MonitorOptions options)
    : ingest_(ctx, zmq::socket_type::pull),
      feed_(ctx, zmq::socket_type::pub),
      store_(std::move(store)),
      buffer_(clock, options.buffer),
      options_(std::move(options)) {
  ingest_.set(zmq::sockopt::maxmsgsize, options_.max_ingest_bytes);
  ingest_.set(zmq::sockopt::linger, 0);
  feed_.set(zmq::sockopt::linger, 0);
}

Status MonitorService::Bind() {
  GANTRY_ASSIGN_OR_RETURN(ingest_endpoint_, BindSocket(ingest_, options_.ingest_bind, "ingest"));
  GANTRY_ASSIGN_OR_RETURN(feed_endpoint_, BindSocket(feed_, options_.feed_bind, "feed"));
  return Status::Ok();
}

void MonitorService::Attach(RpcServer& server) {
  server.Handle("get_metrics", [this](const Request& r) { return GetMetrics(r.body); });
  server.Handle("get_events", [this](const Request& r) { return GetEvents(r.body); });
  server.Handle("stats", [this](const Request&) -> Result<json> { return Stats(); });
  server.AddSocket(&ingest_, [this] { DrainIngest(kMaxFramesPerWakeup); });
  server.OnTick([this] { Tick(); });
}

void MonitorService::DrainIngest(size_t max_frames) {
  for (size_t i = 0; i < max_frames; ++i) {
    zmq::message_t frame;
    if (!ingest_.recv(frame, zmq::recv_flags::dontwait)) return;
    if (frame.more()) {
      // Ingest messages are single frames: drop the whole multipart message.
      while (frame.more() && ingest_.recv(frame, zmq::recv_flags::dontwait)) {
      }
      ++messages_dropped_;
      spdlog::debug("dropped a multipart ingest message");
      continue;
    }
    OnIngestFrame(frame.to_string_view());
    Tick();
  }
}

void MonitorService::OnIngestFrame(std::string_view frame) {
  auto msg = ParseIngestFrame(frame);
  if (!msg.ok()) {
    ++messages_dropped_;
    spdlog::debug("dropped ingest frame of {} bytes: {}", frame.size(), msg.status().message());
    return;
  }
  // Topic and payload first: buffering moves the record out.
  const std::string topic = msg->Topic();
  const std::string payload = msg->FeedPayload();
  bool buffered = std::visit([this](auto& record) { return buffer_.Add(std::move(record)); }, msg->record);
  if (!buffered) {
    ++messages_dropped_;
    return;
  }
  ++(msg->type == kMetricsType ? points_ingested_ : events_ingested_);
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

void MonitorService::Tick() {
  if (buffer_.Due()) (void)Flush();
}

Status MonitorService::Flush() {
  Status s = buffer_.FlushTo(store_);
  if (!s.ok() && !flush_failing_) {
    spdlog::error("writing metrics failed, keeping {} messages buffered: {}", buffer_.size(), s.ToString());
  } else if (s.ok() && flush_failing_) {
    spdlog::info("writing metrics works again");
  }
  flush_failing_ = !s.ok();
  return s;
}

Status MonitorService::Shutdown() {
  DrainIngest(options_.buffer.max_buffered);
  return Flush();
}

Result<json> MonitorService::GetMetrics(const json& body) {
  GANTRY_ASSIGN_OR_RETURN(std::string job_id, JobId(body, "get_metrics"));
  auto after = GetInt(body, "after_step", -1);
  if (!after.ok()) return after.status().WithContext("get_metrics");
  auto limit = GetInt(body, "limit", 100000);
  if (!limit.ok()) return limit.status().WithContext("get_metrics");
  if (*limit < 1) {
    return Status::InvalidArgument("get_metrics: limit must be >= 1 (got " + std::to_string(*limit) + ")");
  }
  // A query sees everything received so far.
  GANTRY_RETURN_IF_ERROR(Flush().WithContext("get_metrics"));
  GANTRY_ASSIGN_OR_RETURN(json points, store_.Points(job_id, *after, *limit));
  return json{{"job_id", job_id}, {"points", std::move(points)}};
}

Result<json> MonitorService::GetEvents(const json& body) {
  GANTRY_ASSIGN_OR_RETURN(std::string job_id, JobId(body, "get_events"));
  GANTRY_RETURN_IF_ERROR(Flush().WithContext("get_events"));
  GANTRY_ASSIGN_OR_RETURN(json events, store_.Events(job_id));
  return json{{"job_id", job_id}, {"events", std::move(events)}};
}

json MonitorService::Stats() const {
  return {{"points_ingested", points_ingested_},
          {"events_ingested", events_ingested_},
          {"messages_dropped", messages_dropped_},
          {"buffered", buffer_.size()}};
}

}  // namespace gantry::monitor
