#include "common/http/server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/http/sse.h"

namespace gantry::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

class Session;

// The most one read asks of the socket (Beast's own cap per read).
constexpr size_t kReadChunk = 64 * 1024;

// State shared by the server and its sessions; outlives every session.
struct Shared {
  HttpServerOptions options;
  std::shared_ptr<const Router> router;
  std::atomic<size_t> connections{0};
  // Guards posting from other threads (SSE publishers, async completions)
  // against Stop() destroying the io_context: they post only while holding
  // post_mu and !stopping.
  std::mutex post_mu;
  bool stopping = false;  // GUARDED_BY(post_mu)
  // Sessions waiting for an async handler's answer. No I/O is pending on
  // them, so this is what keeps them alive; Stop() releases them while the
  // io_context still exists. GUARDED_BY(post_mu)
  std::unordered_map<Session*, std::shared_ptr<Session>> awaiting;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<Shared> shared)
      : stream_(std::move(socket)),
        shared_(std::move(shared)),
        buffer_(shared_->options.max_header_bytes + shared_->options.max_body_bytes + 4096),
        heartbeat_(stream_.get_executor()) {
    ++shared_->connections;
    // Beast reads max(512, free capacity) bytes at a time, and the parser
    // moves each piece of a body out of the buffer at once, so an unreserved
    // buffer never grows: a 3 KB request took 7 reads, each with its own
    // timer update and reactor pass (docs/performance.md, "Serving").
    buffer_.reserve(std::min<size_t>(kReadChunk, buffer_.max_size()));
  }
  ~Session() {
    if (sse_client_) sse_client_->Close();
    --shared_->connections;
  }

  void Start() { DoRead(); }
  auto executor() { return stream_.get_executor(); }

 private:
  void DoRead() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(shared_->options.max_header_bytes));
    parser_->body_limit(shared_->options.max_body_bytes);
    stream_.expires_after(shared_->options.read_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec) {
      if (ec == bhttp::error::header_limit) {
        return SendError(431, "request line and headers exceed " +
                                  std::to_string(shared_->options.max_header_bytes) + " bytes");
      }
      if (ec == bhttp::error::body_limit || ec == bhttp::error::buffer_overflow) {
        return SendError(413, "request body exceeds " + std::to_string(shared_->options.max_body_bytes) + " bytes");
      }
      if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() &&
          ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
        return SendError(400, std::string("malformed request: ") + ec.message());
      }
      return Close();  // end of stream, timeout, reset
    }
    auto& msg = parser_->get();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    for (const auto& field : msg) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers[name] = std::string(field.value());
    }
    req.body = std::move(msg.body());
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();
    Dispatch(std::move(req));
  }

  // Hands the request to the router. The answer comes back through the
  // completion below, on whichever thread the handler answers from:
  //   1. Answered inside DispatchAsync on this thread (synchronous routes,
  //      errors, an async handler that finished at once): kept in `inline`
  //      and written right after DispatchAsync returns, with no hand-off.
  //   2. Answered from another thread, or later: posted to this session's
  //      loop (the session waits in Shared::awaiting meanwhile). The post
  //      is dropped when the server is stopping.
  // A client that disconnects meanwhile is noticed when the response is
  // written (the write fails and the session closes).
  void Dispatch(HttpRequest req) {
    struct Completion {
      std::mutex mu;
      bool dispatching = true;              // GUARDED_BY(mu)
      std::optional<HttpResponse> inline_;  // GUARDED_BY(mu)
    };
    auto completion = std::make_shared<Completion>();
    {
      std::lock_guard<std::mutex> lock(shared_->post_mu);
      shared_->awaiting[this] = shared_from_this();
    }
    const std::thread::id dispatcher = std::this_thread::get_id();
    std::weak_ptr<Session> weak = weak_from_this();
    shared_->router->DispatchAsync(
        std::move(req), shared_->options.token,
        [completion, dispatcher, weak, shared = shared_](HttpResponse res) {
          {
            std::lock_guard<std::mutex> lock(completion->mu);
            if (completion->dispatching && std::this_thread::get_id() == dispatcher) {
              completion->inline_ = std::move(res);
              return;
            }
          }
          std::lock_guard<std::mutex> lock(shared->post_mu);
          if (shared->stopping) return;
          auto self = weak.lock();
          if (!self) return;
          shared->awaiting.erase(self.get());
          asio::post(self->stream_.get_executor(),
                     [self, res = std::move(res)]() mutable { self->Complete(std::move(res)); });
        });
    std::optional<HttpResponse> now;
    {
      std::lock_guard<std::mutex> lock(completion->mu);
      completion->dispatching = false;
      now = std::move(completion->inline_);
    }
    if (!now) return;  // answered later, through the post
    {
      std::lock_guard<std::mutex> lock(shared_->post_mu);
      shared_->awaiting.erase(this);
    }
    Complete(std::move(*now));
  }

  void Complete(HttpResponse res) {
    if (closed_) return;
    if (res.event_stream) return StartEventStream(std::move(res));
    Send(std::move(res));
  }

  void SendError(int status, const std::string& message) {
    keep_alive_ = false;
    version_ = 11;
    Send(HttpResponse::Error(status, message));
  }

  // Writes the header by hand into a buffer the session keeps (Beast's
  // response fields allocate per field: a tenth of the allocations of a
  // served inference), then header and body in one gather write. A session
  // writes one response at a time, so the buffers are free again by the next.
  void Send(HttpResponse res) {
    // An error that may have left unread bytes behind closes the connection.
    if (res.status == 400 || res.status == 413 || res.status == 431) keep_alive_ = false;
    const bool no_body = (res.status >= 100 && res.status < 200) || res.status == 204 || res.status == 304;
    head_.clear();
    head_ += version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    head_ += std::to_string(res.status);
    head_ += ' ';
    const auto reason = bhttp::obsolete_reason(bhttp::int_to_status(static_cast<unsigned>(res.status)));
    head_.append(reason.data(), reason.size());
    AppendField("Server", shared_->options.server_name);
    AppendField("Content-Type", res.content_type);
    for (const auto& [k, v] : res.headers) AppendField(k, v);
    if (!no_body) AppendField("Content-Length", std::to_string(res.body.size()));
    if (version_ >= 11 && !keep_alive_) AppendField("Connection", "close");
    if (version_ < 11 && keep_alive_) AppendField("Connection", "keep-alive");
    head_ += "\r\n\r\n";
    body_ = no_body ? std::string() : std::move(res.body);
    stream_.expires_after(shared_->options.write_timeout);
    const std::array<asio::const_buffer, 2> out{asio::buffer(head_), asio::buffer(body_)};
    asio::async_write(stream_, out, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec || !self->keep_alive_) return self->Close();
      self->DoRead();
    });
  }

  // "\r\nName: value", with any CR or LF in either turned into a space (a
  // header must not be able to start another).
  void AppendField(std::string_view name, std::string_view value) {
    head_ += "\r\n";
    for (char c : name) head_ += (c == '\r' || c == '\n') ? ' ' : c;
    head_ += ": ";
    for (char c : value) head_ += (c == '\r' || c == '\n') ? ' ' : c;
  }

  void StartEventStream(HttpResponse res) {
    broadcaster_ = std::move(res.event_stream);
    // The wake may outlive the io_context (the broadcaster outlives the
    // server): it holds no executor, only a weak session and Shared.
    std::weak_ptr<Session> weak = weak_from_this();
    sse_client_ = broadcaster_->Subscribe([weak, shared = shared_] {
      std::lock_guard<std::mutex> lock(shared->post_mu);
      if (shared->stopping) return;
      if (auto self = weak.lock()) {
        asio::post(self->stream_.get_executor(), [self] { self->PumpEvents(); });
      }
    });
    if (!sse_client_) return SendError(503, "too many event-stream clients");
    keep_alive_ = false;
    pending_ = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
               "X-Accel-Buffering: no\r\nConnection: close\r\n\r\n:ok\n\n";
    ScheduleHeartbeat();
    PumpEvents();
  }

  void ScheduleHeartbeat() {
    if (shared_->options.sse_heartbeat.count() <= 0) return;  // disabled
    heartbeat_.expires_after(shared_->options.sse_heartbeat);
    // The pending heartbeat is what keeps a streaming session alive between
    // writes; Close() cancels it.
    heartbeat_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->closed_) return;
      self->pending_ += ":\n\n";
      self->PumpEvents();
      self->ScheduleHeartbeat();
    });
  }

  // Writes what is queued, one write at a time; closes a dropped client.
  void PumpEvents() {
    if (closed_ || writing_) return;
    if (sse_client_->dropped()) return Close();
    pending_ += sse_client_->TakeAll();
    if (pending_.empty()) return;
    writing_ = true;
    auto data = std::make_shared<std::string>(std::move(pending_));
    pending_.clear();
    stream_.expires_after(shared_->options.write_timeout);
    asio::async_write(stream_, asio::buffer(*data),
                      [self = shared_from_this(), data](beast::error_code ec, size_t) {
                        self->writing_ = false;
                        if (ec) return self->Close();
                        self->stream_.expires_never();
                        self->PumpEvents();
                      });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    if (sse_client_) sse_client_->Close();
    heartbeat_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  std::shared_ptr<Shared> shared_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string head_;  // the response being written: header
  std::string body_;  // and body
  bool keep_alive_ = false;
  unsigned version_ = 11;
  bool closed_ = false;
  // Event stream state.
  std::shared_ptr<SseBroadcaster> broadcaster_;
  std::shared_ptr<SseClient> sse_client_;
  asio::steady_timer heartbeat_;
  std::string pending_;
  bool writing_ = false;
};

// The loop the current thread runs, if it is one of a server's loop threads.
thread_local asio::io_context* t_loop = nullptr;

}  // namespace

bool DeferOnCurrentLoop(std::function<void()> fn) {
  if (t_loop == nullptr) return false;
  asio::post(*t_loop, std::move(fn));
  return true;
}

struct HttpServer::Impl {
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  // One event loop per thread, each run by exactly one thread: a connection
  // lives on one loop (assigned round-robin at accept), so its reads,
  // handler and writes run on one thread with no hand-off between threads
  // (one io_context run by several threads wakes another thread for most
  // completions: ~25 us per request on the 2-core VM, docs/performance.md).
  // The acceptor has a loop (and thread) of its own, so a handler busy on a
  // connection's loop never delays accepting others. A std::deque keeps the
  // loops in place.
  std::deque<asio::io_context> loops;  // loops.front(): the acceptor's
  size_t next_loop = 0;  // accept handler only (the acceptor's thread)
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  std::atomic<uint16_t> port{0};
  bool started = false;

  void DoAccept() {
    asio::io_context& loop = loops[1 + next_loop++ % (loops.size() - 1)];
    // No strand: one thread runs each loop, so a session's handlers never
    // run at once (a strand per connection cost a dispatch per completion).
    acceptor->async_accept(loop, [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
      if (!ec) {
        if (shared->connections.load() >= shared->options.max_connections) {
          static constexpr char kBusy[] =
              "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 26\r\n"
              "Connection: close\r\n\r\ntoo many open connections\n";
          beast::error_code ignored;
          socket.non_blocking(true, ignored);
          asio::write(socket, asio::buffer(kBusy, sizeof(kBusy) - 1), ignored);
          socket.shutdown(tcp::socket::shutdown_both, ignored);
          socket.close(ignored);
        } else {
          // Started on its own loop (the socket belongs to it).
          auto session = std::make_shared<Session>(std::move(socket), shared);
          asio::post(session->executor(), [session] { session->Start(); });
        }
      }
      DoAccept();
    });
  }
};

HttpServer::HttpServer(HttpServerOptions options, std::shared_ptr<const Router> router)
    : impl_(std::make_unique<Impl>()) {
  impl_->shared->options = std::move(options);
  impl_->shared->router = std::move(router);
}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() {
  if (impl_->started) return Status::FailedPrecondition("http server already started");
  const HttpServerOptions& o = impl_->shared->options;
  beast::error_code ec;
  auto addr = asio::ip::make_address(o.address, ec);
  if (ec) return Status::InvalidArgument("http: bad listen address '" + o.address + "': " + ec.message());
  tcp::endpoint ep(addr, o.port);
  const int n = o.threads > 0 ? o.threads : 1;
  impl_->loops.clear();
  for (int i = 0; i <= n; ++i) impl_->loops.emplace_back();  // + the acceptor's
  auto& acc = impl_->acceptor.emplace(impl_->loops.front());
  std::string where = o.address + ":" + std::to_string(o.port);
  if (acc.open(ep.protocol(), ec); ec) return Status::Unavailable("http: open " + where + ": " + ec.message());
  if (acc.set_option(asio::socket_base::reuse_address(true), ec); ec) {
    return Status::Unavailable("http: SO_REUSEADDR " + where + ": " + ec.message());
  }
  if (acc.bind(ep, ec); ec) return Status::Unavailable("http: bind " + where + ": " + ec.message());
  if (acc.listen(asio::socket_base::max_listen_connections, ec); ec) {
    return Status::Unavailable("http: listen " + where + ": " + ec.message());
  }
  impl_->port = acc.local_endpoint().port();
  impl_->started = true;
  {
    std::lock_guard<std::mutex> lock(impl_->shared->post_mu);
    impl_->shared->stopping = false;
  }
  impl_->DoAccept();
  // Each loop runs until Stop(), even while it has no connection.
  for (auto& loop : impl_->loops) {
    impl_->guards.emplace_back(asio::make_work_guard(loop));
    impl_->threads.emplace_back([&loop] {
      t_loop = &loop;
      loop.run();
    });
  }
  return Status::Ok();
}

uint16_t HttpServer::port() const { return impl_->port.load(); }

size_t HttpServer::connections() const { return impl_->shared->connections.load(); }

void HttpServer::Stop() {
  if (!impl_ || !impl_->started) return;
  impl_->started = false;
  {
    std::lock_guard<std::mutex> lock(impl_->shared->post_mu);
    impl_->shared->stopping = true;
  }
  for (auto& loop : impl_->loops) loop.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  // Sessions still waiting for an async answer are released while the
  // io_context exists (their answer, if it comes, is dropped: stopping).
  std::unordered_map<Session*, std::shared_ptr<Session>> awaiting;
  {
    std::lock_guard<std::mutex> lock(impl_->shared->post_mu);
    awaiting.swap(impl_->shared->awaiting);
  }
  awaiting.clear();
  // Destroying the io_context destroys the pending handlers, which releases
  // (and so closes) every session.
  impl_->acceptor.reset();
  impl_->guards.clear();
  impl_->loops.clear();
}

}  // namespace gantry::http
