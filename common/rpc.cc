#include "common/rpc.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include "common/curve.h"
#include "common/ids.h"

namespace gantry {

RpcServer::RpcServer(zmq::context_t& ctx, RpcServerOptions options)
    : socket_(ctx, zmq::socket_type::router), options_(std::move(options)) {
  // Long enough for the reply to a "shutdown" request to leave.
  socket_.set(zmq::sockopt::linger, 500);
  socket_.set(zmq::sockopt::maxmsgsize, options_.max_message_bytes);
  // A reply to a peer that vanished is dropped rather than blocking.
  socket_.set(zmq::sockopt::router_mandatory, 0);
}

Status RpcServer::Bind() {
  std::string addr = options_.bind;
  // Accept ":0" as "any free port" like most servers do.
  if (addr.size() > 2 && addr.compare(addr.size() - 2, 2, ":0") == 0) {
    addr.replace(addr.size() - 1, 1, "*");
  }
  // CURVE when the process runs with it (common/curve.h); never reachable
  // from other hosts without it.
  GANTRY_RETURN_IF_ERROR(CheckBindAllowed(addr, ProcessCurveEnabled(), "API address"));
  GANTRY_RETURN_IF_ERROR(MakeCurveServer(socket_));
  try {
    socket_.bind(addr);
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Status::Unavailable("cannot bind " + addr + ": " + e.what() +
                               " (is another Gantry service using this port?)");
  }
  return Status::Ok();
}

void RpcServer::Handle(const std::string& type, Handler handler) {
  handlers_[type] = std::move(handler);
}

void RpcServer::AddSocket(zmq::socket_t* socket, std::function<void()> fn) {
  extra_.push_back({socket, -1, std::move(fn)});
}

void RpcServer::AddFd(int fd, std::function<void()> fn) {
  extra_.push_back({nullptr, fd, std::move(fn)});
}

std::string RpcServer::Dispatch(std::string_view payload) {
  Reply rep;
  // Sets rep.id as soon as the id is read, so a later error still echoes it.
  auto req = DecodeRequest(payload, &rep.id);
  if (!req.ok()) {
    rep.status = req.status();
    return EncodeReply(rep);
  }
  auto it = handlers_.find(req->type);
  if (it == handlers_.end()) {
    rep.status = Status::InvalidArgument("unknown message type '" + req->type + "'");
    return EncodeReply(rep);
  }
  try {
    auto body = it->second(*req);
    if (body.ok()) {
      rep.body = std::move(body).value();
    } else {
      rep.status = body.status();
    }
  } catch (const std::exception& e) {
    spdlog::error("handler for {} threw: {}", req->type, e.what());
    rep.status = Status::Internal(std::string("handler failed: ") + e.what());
  }
  return EncodeReply(rep);
}

void RpcServer::HandleOne() {
  // A multipart message arrives whole, so reading on without waiting gets
  // all of its frames.
  std::vector<zmq::message_t> frames;
  size_t total = 0;
  while (true) {
    zmq::message_t m;
    if (!socket_.recv(m, zmq::recv_flags::dontwait)) break;
    ++total;
    const bool more = m.more();
    if (frames.size() < kMaxFrames) frames.push_back(std::move(m));
    if (!more) break;
  }
  if (total == 0) return;
  // [identity, (routing...,) empty, request]: the first empty frame after
  // the identity ends the routing envelope.
  size_t delim = 1;
  while (delim < frames.size() && frames[delim].size() != 0) ++delim;
  if (delim + 1 >= frames.size()) {
    dropped_.fetch_add(1);
    spdlog::debug("dropping message with bad framing ({} frames, no empty delimiter followed by a request)",
                  total);
    return;
  }
  const auto& first = frames[delim + 1];
  const std::string_view payload(static_cast<const char*>(first.data()), first.size());
  const size_t body_frames = total - delim - 1;
  std::string reply;
  if (body_frames == 1) {
    reply = Dispatch(payload);
  } else {
    Reply rep;
    (void)DecodeRequest(payload, &rep.id);  // only for the id to echo
    rep.status = Status::InvalidArgument(
        "request has " + std::to_string(body_frames) +
        " frames after the empty delimiter; a request is exactly one frame (put everything in its body)");
    reply = EncodeReply(rep);
  }
  for (size_t i = 0; i <= delim; ++i) {
    zmq::message_t copy(frames[i].data(), frames[i].size());
    (void)socket_.send(copy, zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  }
  (void)socket_.send(zmq::buffer(reply), zmq::send_flags::dontwait);
}

Status RpcServer::Serve() {
  auto next_tick = std::chrono::steady_clock::now();
  while (!stop_.load()) {
    std::vector<zmq::pollitem_t> items;
    items.push_back({socket_.handle(), 0, ZMQ_POLLIN, 0});
    for (auto& e : extra_) {
      items.push_back({e.socket ? e.socket->handle() : nullptr, e.fd, ZMQ_POLLIN, 0});
    }
    auto now = std::chrono::steady_clock::now();
    // Rounded up: truncating left the last fraction of a millisecond before
    // each tick to zero-timeout polls, a spin that kept an idle monitor
    // (10 ms ticks) at ~8% of a core.
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_tick - now);
    if (wait.count() < 0) wait = std::chrono::milliseconds(0);
    try {
      zmq::poll(items.data(), items.size(), wait);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      return Status::Internal(std::string("poll: ") + e.what());
    }
    try {
      if (items[0].revents & ZMQ_POLLIN) HandleOne();
      for (size_t i = 1; i < items.size(); ++i) {
        if (items[i].revents & ZMQ_POLLIN) extra_[i - 1].fn();
      }
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) spdlog::warn("socket error: {}", e.what());
    }
    if (std::chrono::steady_clock::now() >= next_tick) {
      if (tick_) tick_();
      next_tick = std::chrono::steady_clock::now() + options_.tick_interval;
    }
  }
  return Status::Ok();
}

// The client's socket and what its monitor has said about the connection.
struct RpcClient::Link {
  Link(zmq::context_t& ctx, const RpcLiveness& live, bool watched)
      : dealer(ctx, zmq::socket_type::dealer), monitor(ctx, zmq::socket_type::pair), watched(watched) {
    dealer.set(zmq::sockopt::linger, 0);
    dealer.set(zmq::sockopt::heartbeat_ivl, static_cast<int>(live.heartbeat_interval.count()));
    dealer.set(zmq::sockopt::heartbeat_timeout, static_cast<int>(live.heartbeat_timeout.count()));
    dealer.set(zmq::sockopt::heartbeat_ttl, static_cast<int>(3 * live.heartbeat_timeout.count()));
    dealer.set(zmq::sockopt::handshake_ivl, static_cast<int>(live.connect_timeout.count()));
    monitor.set(zmq::sockopt::linger, 0);
    curve = ProcessCurve();
    MakeCurveClient(dealer, curve);
  }
  ~Link() {
    if (monitoring) (void)zmq_socket_monitor(dealer.handle(), nullptr, 0);
  }

  zmq::socket_t dealer;
  zmq::socket_t monitor;  // PAIR receiving the dealer's events
  // inproc peers raise no events: such a link is taken as always up.
  bool watched = true;
  bool monitoring = false;
  bool up = false;          // handshake done, no disconnect since
  int refused = 0;          // connect attempts that failed since the last up
  CurveSettings curve;      // what the dealer authenticates with
  // A handshake the service refused (wrong mechanism, key not authorised):
  // the call fails at once with this explanation, it will not get better.
  std::string refusal;
  std::string handshake_failure;  // a handshake that failed without detail
  int handshake_failures = 0;     // such failures since the last success
};

namespace {

constexpr int kMonitorEvents = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECT_RETRIED |
                               ZMQ_EVENT_CLOSED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;

std::string Ms(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

bool IsHexish(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

}  // namespace

RpcClient::RpcClient(zmq::context_t& ctx, std::string endpoint, std::chrono::milliseconds timeout,
                     RpcLiveness liveness)
    : ctx_(&ctx), endpoint_(std::move(endpoint)), timeout_(timeout), liveness_(liveness) {}

RpcClient::~RpcClient() = default;
RpcClient::RpcClient(RpcClient&&) noexcept = default;
RpcClient& RpcClient::operator=(RpcClient&&) noexcept = default;

Status RpcClient::Connect() {
  const bool watched = endpoint_.rfind("inproc://", 0) != 0;
  auto link = std::make_unique<Link>(*ctx_, liveness_, watched);
  if (watched) {
    // The monitor's PAIR is connected before the dealer dials, so no event
    // is missed.
    const std::string addr = "inproc://gantry-rpc-monitor-" + NewRequestId();
    if (zmq_socket_monitor(link->dealer.handle(), addr.c_str(), kMonitorEvents) != 0) {
      return Status::Internal("zmq_socket_monitor: " + std::string(zmq_strerror(zmq_errno())));
    }
    link->monitoring = true;
    link->monitor.connect(addr);
  } else {
    link->up = true;
  }
  link->dealer.connect(endpoint_);
  link_ = std::move(link);
  return Status::Ok();
}

void RpcClient::PollMonitor(std::chrono::milliseconds wait) {
  Link& l = *link_;
  if (!l.watched) return;
  zmq::pollitem_t item{l.monitor.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, wait);
  while (true) {
    zmq::message_t event;
    if (!l.monitor.recv(event, zmq::recv_flags::dontwait)) return;
    zmq::message_t address;  // the event's second frame
    if (event.more()) (void)l.monitor.recv(address, zmq::recv_flags::dontwait);
    if (event.size() < sizeof(uint16_t)) continue;
    uint16_t id = 0;
    std::memcpy(&id, event.data(), sizeof id);
    uint32_t value = 0;
    if (event.size() >= sizeof id + sizeof value) {
      std::memcpy(&value, static_cast<const char*>(event.data()) + sizeof id, sizeof value);
    }
    switch (id) {
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        l.up = false;
        l.refusal = DescribeHandshakeFailure(endpoint_, id, value, l.curve.enabled);
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        // The peer closed mid-handshake. Once could be a service dying; twice
        // in a row is a peer refusing us (a CURVE service closes on a plain
        // client before the client reads why, or on a wrong server key). A
        // handshake that timed out (a frozen service) is no refusal.
        l.up = false;
        if (static_cast<int>(value) == ETIMEDOUT || static_cast<int>(value) == EAGAIN) break;
        l.handshake_failure = DescribeHandshakeFailure(endpoint_, id, value, l.curve.enabled);
        if (++l.handshake_failures >= 2) l.refusal = l.handshake_failure;
        break;
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        l.up = true;
        l.refused = 0;
        l.handshake_failure.clear();
        l.handshake_failures = 0;
        break;
      case ZMQ_EVENT_DISCONNECTED:
      case ZMQ_EVENT_CLOSED:
        l.up = false;
        break;
      case ZMQ_EVENT_CONNECT_RETRIED:
        ++l.refused;
        break;
      default:
        break;
    }
  }
}

Result<json> RpcClient::Call(const std::string& type, const json& body) {
  return Call(type, body, CallOptions{});
}

Result<json> RpcClient::Call(const std::string& type, const json& body, std::chrono::milliseconds timeout) {
  CallOptions o;
  o.timeout = timeout;
  return Call(type, body, o);
}

Result<json> RpcClient::Call(const std::string& type, const json& body, const CallOptions& options) {
  using Clock = std::chrono::steady_clock;
  const auto timeout = options.timeout.count() > 0 ? options.timeout : timeout_;
  const auto start = Clock::now();
  const auto deadline = start + timeout;
  const auto retry_until = start + (options.idempotent ? options.retry_for : std::chrono::milliseconds(0));
  int attempts = 0;
  while (true) {
    ++attempts;
    const auto now = Clock::now();
    // A first try waits connect_timeout for the connection; a retry waits
    // for the service to come back until the retry window closes.
    auto connect_deadline = attempts == 1 ? std::max(now + liveness_.connect_timeout, retry_until) : retry_until;
    connect_deadline = std::min(connect_deadline, deadline);
    Outcome outcome = Outcome::kReply;
    auto r = Attempt(type, body, deadline, connect_deadline, &outcome);
    if (outcome == Outcome::kReply || outcome == Outcome::kTimeout) return r;
    const bool retry = options.idempotent && Clock::now() < retry_until && Clock::now() < deadline;
    if (!retry) {
      if (attempts == 1) return r;
      return r.status().WithContext("after " + std::to_string(attempts) + " tries over " +
                                    Ms(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start)));
    }
    spdlog::debug("retrying '{}' to {}: {}", type, endpoint_, r.status().message());
  }
}

Result<json> RpcClient::Attempt(const std::string& type, const json& body, std::chrono::steady_clock::time_point deadline,
                                std::chrono::steady_clock::time_point connect_deadline, Outcome* outcome) {
  using Clock = std::chrono::steady_clock;
  auto left = [](Clock::time_point until) {
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()));
  };
  try {
    if (!link_) GANTRY_RETURN_IF_ERROR(Connect());
    // 1. Wait for the connection (an idle one may have dropped since the
    //    last call; ZeroMQ redials by itself).
    PollMonitor(std::chrono::milliseconds(0));
    while (!link_->up) {
      if (!link_->refusal.empty()) {
        // Authentication: retrying cannot help, and no retry may send it.
        std::string why = std::move(link_->refusal);
        link_.reset();
        *outcome = Outcome::kReply;
        return Status::FailedPrecondition(why);
      }
      const auto wait = left(connect_deadline);
      if (wait.count() == 0) {
        const bool refused = link_->refused > 0;
        const std::string handshake = link_->handshake_failure;
        link_.reset();
        *outcome = Outcome::kNotUp;
        if (!handshake.empty()) {
          return Status::Unavailable("cannot reach " + endpoint_ + " for '" + type + "': " + handshake);
        }
        return Status::Unavailable("cannot reach " + endpoint_ + " for '" + type + "': " +
                                   (refused ? "connection refused" : "no connection") +
                                   " (is the service running?)");
      }
      PollMonitor(std::min(wait, std::chrono::milliseconds(100)));
    }
    // 2. Send. ZeroMQ takes the encoded bytes without copying them (a 100 MB
    // checkpoint would otherwise be faulted into a second buffer) and frees
    // them once they are on the wire.
    const std::string id = NewRequestId();
    auto payload = std::make_unique<std::string>(EncodeRequest(type, id, "", body));
    zmq::message_t frame(payload->data(), payload->size(),
                         [](void*, void* hint) { delete static_cast<std::string*>(hint); }, payload.get());
    payload.release();  // owned by `frame` now
    link_->dealer.send(zmq::message_t(), zmq::send_flags::sndmore);
    link_->dealer.send(frame, zmq::send_flags::none);
    const auto sent = Clock::now();
    // 3. Wait for the reply, the connection's loss, or the deadline.
    auto read_reply = [&](bool* matched) -> Result<json> {
      *matched = false;
      std::vector<zmq::message_t> frames;
      zmq::message_t m;
      do {
        if (!link_->dealer.recv(m, zmq::recv_flags::dontwait)) break;
        frames.push_back(std::move(m));
      } while (frames.back().more());
      if (frames.empty()) return json();
      auto rep = DecodeReply(frames.back().to_string_view());
      if (!rep.ok()) {
        *matched = true;
        return rep.status().WithContext("bad reply from " + endpoint_);
      }
      if (rep->id != id) return json();  // a late reply to an earlier call
      *matched = true;
      if (!rep->status.ok()) return rep->status;
      return std::move(rep->body);
    };
    while (true) {
      const auto wait = left(deadline);
      if (wait.count() == 0) break;
      zmq::pollitem_t items[2] = {{link_->dealer.handle(), 0, ZMQ_POLLIN, 0},
                                  {link_->monitor.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, link_->watched ? 2 : 1, wait);
      if (items[0].revents & ZMQ_POLLIN) {
        bool matched = false;
        auto r = read_reply(&matched);
        if (matched) return r;
      }
      if (link_->watched && (items[1].revents & ZMQ_POLLIN)) {
        PollMonitor(std::chrono::milliseconds(0));
        if (!link_->up) {
          // A reply that arrived just before the connection closed (a
          // service answering "shutdown") is still readable.
          while (true) {
            bool matched = false;
            auto r = read_reply(&matched);
            if (matched) return r;
            if (!(link_->dealer.get(zmq::sockopt::events) & ZMQ_POLLIN)) break;
          }
          // Anything still queued must not reach a restarted service later.
          link_.reset();
          *outcome = Outcome::kLost;
          return Status::Unavailable(
              "lost the connection to " + endpoint_ + " " +
              Ms(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - sent)) +
              " into '" + type + "' (the service stopped, crashed or stopped answering heartbeats)");
        }
      }
    }
    link_.reset();
    *outcome = Outcome::kTimeout;
    return Status::Unavailable("no reply from " + endpoint_ + " to '" + type + "' within " +
                               Ms(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - sent)) +
                               " (the service is up but slow)");
  } catch (const zmq::error_t& e) {
    link_.reset();
    *outcome = Outcome::kLost;
    return Status::Unavailable("talking to " + endpoint_ + ": " + e.what());
  }
}

Result<std::string> GetRequestId(const json& body, std::string_view what) {
  auto it = body.find(kRequestIdField);
  if (it == body.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return Status::InvalidArgument(std::string(what) + ": field 'request_id' must be a string");
  }
  const std::string id = it->get<std::string>();
  if (id.size() < 8 || id.size() > 64 || !std::all_of(id.begin(), id.end(), IsHexish)) {
    return Status::InvalidArgument(std::string(what) + ": field 'request_id' must be 8..64 letters, digits, '-' or '_' (got '" +
                                   id.substr(0, 80) + "')");
  }
  return id;
}

}  // namespace gantry
