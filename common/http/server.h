// HttpServer: HTTP/1.1 on Boost.Beast/Asio, with its own io_context and
// threads, answering requests through a Router.
//
// Limits (HttpServerOptions): a request header over max_header_bytes is
// answered 431, a body over max_body_bytes 413, and the connection closed; a
// malformed request 400 and closed; past max_connections a new connection
// gets 503 and is closed; a request (headers and body) must arrive within
// read_timeout of the previous response (or the connect), so an idle or
// slowloris connection is dropped; a response must drain within
// write_timeout. Keep-alive is HTTP/1.1's default.
//
// Event streams: a handler that returns HttpResponse::EventStream(b) keeps
// the connection open (`Content-Type: text/event-stream`, closed-delimited
// body) and writes every event `b` publishes; a comment is sent every
// sse_heartbeat so a dead peer is noticed. Such a client that stops reading
// is dropped by the broadcaster's queue bound, or by write_timeout.
//
// Handlers run on the server's threads: keep them short. A route added with
// Router::AddAsync may answer later from any thread (its HttpResponder);
// the connection then holds no thread while it waits, and the answer is
// written on the connection's event loop (each loop has one thread, so a
// connection's handlers never run at once; no strand is needed). A client that disconnects before the
// answer is noticed when the answer is written. Stop() drops answers that
// have not come yet. Requests on one connection are answered in order (the
// next is read only after the previous answer is written).
// Thread safety: Start/Stop from one owner thread; port()/connections()
// from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "common/http/router.h"

namespace gantry::http {

inline constexpr uint16_t kDefaultHttpPort = 8600;

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = kDefaultHttpPort;  // 0 picks a free port; see port()
  // Event loops, one thread each (plus one thread that only accepts); a
  // connection stays on one loop, so a slow synchronous handler delays the
  // other connections of its loop only.
  int threads = 1;
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1 << 20;
  size_t max_connections = 128;
  std::chrono::milliseconds read_timeout{10'000};
  std::chrono::milliseconds write_timeout{10'000};
  std::chrono::milliseconds sse_heartbeat{15'000};  // <= 0: no heartbeat
  // Bearer token for mutating routes; empty refuses them all (403).
  std::string token;
  // The Server header of every response.
  std::string server_name = "gantry-monitor";
};

// On a thread running one of an HttpServer's event loops (a handler, or an
// answer given there), queues `fn` to run on that loop after the
// completions already ready on it: the requests that arrived with this one
// are read first. Returns false, doing nothing, on any other thread. `fn`
// never runs if the server stops first (it is destroyed instead, on the
// thread that stops the server).
bool DeferOnCurrentLoop(std::function<void()> fn);

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, std::shared_ptr<const Router> router);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the threads. Fails (unavailable) when the
  // address cannot be bound, or if already started.
  Status Start();
  // The bound port (the chosen one when options.port was 0); 0 before Start.
  uint16_t port() const;
  // Open connections right now.
  size_t connections() const;
  // Closes the listener and every connection, joins the threads. Idempotent.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gantry::http
