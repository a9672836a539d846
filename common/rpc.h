// Request/reply over ZeroMQ: RpcServer (ROUTER) and RpcClient (DEALER).
//
// Protocol of one call:
//   1. The client sends [empty delimiter, request] on a DEALER socket (so REQ
//      peers work too).
//   2. The server's ROUTER receives [identity, ..., empty, request], decodes
//      it, runs the handler registered for `type`, and sends back
//      [identity, ..., empty, reply] with the same request id.
//   3. The client waits up to its timeout for the reply whose id matches;
//      on timeout it drops the socket (late replies die with it).
// Liveness is not the timeout (RpcClient): the client sends the request only
// once its connection is up, and watches that connection while it waits
// (a ZeroMQ socket monitor for disconnects, ZMTP heartbeats for a peer that
// went silent). A service that is not running, or dies or freezes
// mid-call, gives `unavailable` within a few seconds, naming its endpoint,
// however long the call's timeout; a slow service that is alive (its
// ZeroMQ I/O thread answers the heartbeats while a handler runs) keeps the
// call going up to the timeout.
// Malformed input, in the order the server checks it:
//   - no empty delimiter after the routing frames, or nothing after it: the
//     message cannot be answered in a way a DEALER/REQ peer would read, so
//     it is dropped and counted (messages_dropped());
//   - more than one frame after the delimiter: an invalid_argument reply
//     naming the frame count (the request is not run);
//   - a request frame that does not decode (bad MessagePack, not a map,
//     wrong `v`, missing `type`, `body` not a map) or an unknown `type`: an
//     invalid_argument reply.
// Every error reply echoes the request's `id` when the frame decoded far
// enough to read it (a map whose `id` is a string), else carries id "".
// Frames above max_message_bytes are refused by ZeroMQ itself (the peer is
// disconnected; the server never sees them). Handlers never see malformed
// input and may not throw past the server (an exception becomes an
// `internal` error reply).
//
// Thread safety: an RpcServer runs on the thread that calls Serve(); Stop()
// may be called from any thread. An RpcClient belongs to one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "common/protocol.h"

namespace gantry {

using Handler = std::function<Result<json>(const Request&)>;

struct RpcServerOptions {
  // "tcp://127.0.0.1:7600"; port "*" or 0 picks a free port.
  std::string bind = "tcp://127.0.0.1:*";
  int64_t max_message_bytes = kDefaultMaxMessageBytes;
  // How often Serve() wakes to run the tick callback even without traffic.
  std::chrono::milliseconds tick_interval{200};
};

class RpcServer {
 public:
  RpcServer(zmq::context_t& ctx, RpcServerOptions options);

  // Binds the socket. After this, endpoint() is the concrete address.
  Status Bind();
  const std::string& endpoint() const { return endpoint_; }
  // Largest request frame this server accepts (RpcServerOptions).
  int64_t max_message_bytes() const { return options_.max_message_bytes; }

  void Handle(const std::string& type, Handler handler);
  // Called between messages, at least every tick_interval.
  void OnTick(std::function<void()> tick) { tick_ = std::move(tick); }
  // Extra sockets polled with the API socket; `fn` runs when one is readable.
  void AddSocket(zmq::socket_t* socket, std::function<void()> fn);
  // A plain file descriptor (a SignalFd, a pipe) polled the same way.
  void AddFd(int fd, std::function<void()> fn);

  // Runs until Stop(). Returns the first socket error, if any.
  Status Serve();
  void Stop() { stop_.store(true); }
  bool stopping() const { return stop_.load(); }

  // Decodes and dispatches one request payload; public for tests.
  std::string Dispatch(std::string_view payload);

  // Messages dropped without a reply (bad framing) since construction.
  // Safe to read from any thread.
  int64_t messages_dropped() const { return dropped_.load(); }

 private:
  // Frames of one message kept for routing and the payload; the rest of a
  // longer message is read and discarded (its reply says how many it had).
  static constexpr size_t kMaxFrames = 16;

  void HandleOne();

  zmq::socket_t socket_;
  RpcServerOptions options_;
  std::string endpoint_;
  std::map<std::string, Handler> handlers_;
  std::function<void()> tick_;
  // Extra poll items: a socket, or a raw fd when the socket is null.
  struct Extra {
    zmq::socket_t* socket;
    int fd;
    std::function<void()> fn;
  };
  std::vector<Extra> extra_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> dropped_{0};
};

// How an RpcClient decides that its peer is gone. Shorter detects a dead
// service sooner but may give up on a live one across a network stall;
// loopback and LAN peers answer heartbeats in well under a millisecond.
struct RpcLiveness {
  // No connection (TCP and ZMTP handshake) within this: unavailable. Also
  // the wait for a restarted service before each retry.
  std::chrono::milliseconds connect_timeout{2000};
  // A PING every interval; no traffic at all from the peer for `timeout`
  // drops the connection (then unavailable). The peer is told to drop us
  // after 3 x timeout of silence (ZMQ_HEARTBEAT_TTL).
  std::chrono::milliseconds heartbeat_interval{500};
  std::chrono::milliseconds heartbeat_timeout{2000};
};

class RpcClient {
 public:
  // Per-call settings (Call's third form).
  struct CallOptions {
    // Upper bound on the call, however alive the peer; 0 means the
    // client's default timeout.
    std::chrono::milliseconds timeout{0};
    // The request may be sent again without changing the outcome: a read
    // (ping, list, get, status, load...) or a write carrying a `request_id`
    // the service deduplicates (docs/protocol.md). Only these are retried.
    bool idempotent = false;
    // How long after the call began a lost connection or a service that is
    // not up yet is retried (a fresh connection, the same body). 0: never.
    std::chrono::milliseconds retry_for{0};
  };

  RpcClient(zmq::context_t& ctx, std::string endpoint,
            std::chrono::milliseconds timeout = std::chrono::seconds(10), RpcLiveness liveness = {});
  ~RpcClient();
  RpcClient(RpcClient&&) noexcept;
  RpcClient& operator=(RpcClient&&) noexcept;

  // Sends `type` with `body`; returns the reply body or the error it carried.
  // unavailable when the service is not running, its connection is lost
  // or it stops answering heartbeats (fast, see RpcLiveness), or when no
  // reply comes within the timeout (a live but slow service).
  Result<json> Call(const std::string& type, const json& body = json::object());
  Result<json> Call(const std::string& type, const json& body, std::chrono::milliseconds timeout);
  Result<json> Call(const std::string& type, const json& body, const CallOptions& options);
  const std::string& endpoint() const { return endpoint_; }

 private:
  struct Link;  // the DEALER, its monitor and the connection state
  enum class Outcome { kReply, kLost, kNotUp, kTimeout };
  Status Connect();
  // One send-and-wait on the current link.
  Result<json> Attempt(const std::string& type, const json& body, std::chrono::steady_clock::time_point deadline,
                       std::chrono::steady_clock::time_point connect_deadline, Outcome* outcome);
  // Reads the monitor's pending events; waits up to `wait` for the first.
  void PollMonitor(std::chrono::milliseconds wait);

  zmq::context_t* ctx_;
  std::string endpoint_;
  std::chrono::milliseconds timeout_;
  RpcLiveness liveness_;
  std::unique_ptr<Link> link_;
};

// A non-idempotent request's `request_id` body field is a NewRequestId()
// (common/ids.h), made once per user action and reused on every retry.

// The optional `request_id` body field (kRequestIdField): "" when absent;
// invalid_argument unless 8..64 of [0-9A-Za-z_-]. `what` names the request.
Result<std::string> GetRequestId(const json& body, std::string_view what);
inline constexpr const char* kRequestIdField = "request_id";

}  // namespace gantry
