#include "common/rpc.h"

#include <spdlog/spdlog.h>

#include <vector>

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
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - now);
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

RpcClient::RpcClient(zmq::context_t& ctx, std::string endpoint, std::chrono::milliseconds timeout)
    : ctx_(ctx), endpoint_(std::move(endpoint)), timeout_(timeout) {}

void RpcClient::Connect() {
  socket_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
  socket_->set(zmq::sockopt::linger, 0);
  socket_->connect(endpoint_);
}

Result<json> RpcClient::Call(const std::string& type, const json& body) {
  return Call(type, body, timeout_);
}

Result<json> RpcClient::Call(const std::string& type, const json& body,
                             std::chrono::milliseconds timeout) {
  try {
    if (!socket_) Connect();
    const std::string id = NewRequestId();
    // ZeroMQ takes the encoded bytes without copying them (a 100 MB
    // checkpoint would otherwise be faulted into a second buffer) and frees
    // them once they are on the wire.
    auto payload = std::make_unique<std::string>(EncodeRequest(type, id, "", body));
    zmq::message_t frame(payload->data(), payload->size(),
                         [](void*, void* hint) { delete static_cast<std::string*>(hint); }, payload.get());
    payload.release();  // owned by `frame` now
    socket_->send(zmq::message_t(), zmq::send_flags::sndmore);
    socket_->send(frame, zmq::send_flags::none);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, left);
      if (!(item.revents & ZMQ_POLLIN)) continue;
      std::vector<zmq::message_t> frames;
      zmq::message_t m;
      do {
        if (!socket_->recv(m, zmq::recv_flags::none)) break;
        frames.push_back(std::move(m));
      } while (frames.back().more());
      if (frames.empty()) continue;
      auto rep = DecodeReply(frames.back().to_string_view());
      if (!rep.ok()) return rep.status().WithContext("bad reply from " + endpoint_);
      if (rep->id != id) continue;  // a late reply to an earlier call
      if (!rep->status.ok()) return rep->status;
      return std::move(rep->body);
    }
    socket_.reset();
    return Status::Unavailable("no reply from " + endpoint_ + " to '" + type + "' within " +
                               std::to_string(timeout.count()) + " ms");
  } catch (const zmq::error_t& e) {
    socket_.reset();
    return Status::Unavailable("talking to " + endpoint_ + ": " + e.what());
  }
}

}  // namespace gantry
