// HttpResponder: completes one request's response, now or later, from any
// thread (the asynchronous form of a route handler; see Router::AddAsync).
//
// Contract:
//   1. The first Send() wins; later calls are ignored (sent() tells).
//   2. Copies share one state. When the last copy is destroyed without a
//      Send(), the request is answered 500 ("the handler dropped the
//      request"), so a connection never hangs on a forgotten response.
//   3. Send() may run on any thread, before or after the handler returned.
//      The function given to the constructor decides how the response
//      reaches the connection (HttpServer posts it to the connection's
//      event loop, or writes it at once when Send() runs on that loop's
//      thread).
//
// Thread safety: Send() and sent() may be called from any thread at once.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "common/http/message.h"

namespace gantry::http {

class HttpResponder {
 public:
  using SendFn = std::function<void(HttpResponse)>;

  HttpResponder() = default;  // empty: Send() does nothing
  explicit HttpResponder(SendFn send);

  // Answers the request with `response` (first call only).
  void Send(HttpResponse response) const;
  bool sent() const;

 private:
  struct State {
    explicit State(SendFn fn) : send(std::move(fn)) {}
    ~State();
    SendFn send;
    std::atomic<bool> sent{false};
  };
  std::shared_ptr<State> state_;
};

}  // namespace gantry::http
