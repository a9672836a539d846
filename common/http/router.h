// Router: method + path pattern -> handler, with `{name}` captures, query
// parsing and the bearer-token check for mutating routes.
//
// Patterns are absolute paths whose segments are literals or `{name}`
// captures ("/api/jobs/{id}/metrics"); a capture matches exactly one
// non-empty segment. A literal segment wins over a capture. Routes for POST,
// PUT, PATCH and DELETE are mutating and always need the bearer token;
// RouteOptions::require_token adds the check to a GET route too;
// RouteOptions::public_route drops it from a mutating one.
//
// Dispatch() never throws and never crashes on input: a bad target or bad
// percent-encoding is 400, an unknown path 404, a known path with another
// method 405, a missing token 401, a wrong one 403, a handler that throws 500.
//
// Two kinds of handler:
//   - Handler (Add): returns the response; the thread that runs it is held
//     until it returns. The monitor's routes are all of this kind.
//   - AsyncHandler (AddAsync): gets an HttpResponder and may answer later
//     from any thread (gantry-serve's infer: the batcher's callback answers),
//     so no server thread waits while the request waits for its batch. A
//     handler that throws before answering is answered 500; one that drops
//     its responder unanswered is answered 500 too (responder.h).
// DispatchAsync() serves both kinds (HttpServer uses it); Dispatch() serves
// both too, blocking the caller until an async route has answered.
//
// Thread safety: Add() before the server starts; Dispatch() is const and may
// run on many threads at once (handlers must be thread-safe themselves).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/http/message.h"
#include "common/http/responder.h"

namespace gantry::http {

using Handler = std::function<HttpResponse(const HttpRequest&)>;
// Answers through the responder, now or later (see the header comment).
using AsyncHandler = std::function<void(const HttpRequest&, HttpResponder)>;

struct RouteOptions {
  bool require_token = false;  // implied for POST/PUT/PATCH/DELETE
  // A mutating route open to anyone (gantry-serve's infer and feedback,
  // which change no server state a token would protect).
  bool public_route = false;
};

// %XX and (in queries) '+' decoding; fails on a malformed escape or NUL.
Result<std::string> PercentDecode(std::string_view in, bool plus_is_space);
// "a=1&b=x%20y&c" -> {a:1, b:"x y", c:""}.
Result<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view query);
bool IsMutatingMethod(std::string_view method);

class Router {
 public:
  // Fails on a pattern that is not absolute or has an empty/bad capture, or
  // on a (method, pattern) registered twice.
  Status Add(std::string method, std::string pattern, Handler handler, RouteOptions options = {});
  // The same for a handler that answers through an HttpResponder.
  Status AddAsync(std::string method, std::string pattern, AsyncHandler handler, RouteOptions options = {});
  // Answers `request` (its path/query/params are filled in here from
  // `request.target`). `token` is the server's bearer token; when empty,
  // token-protected routes answer 403. On an async route, blocks until the
  // handler has answered.
  HttpResponse Dispatch(HttpRequest request, const std::string& token) const;
  // Answers `request` through `done`, exactly once: before returning for
  // errors and synchronous routes, on any thread (maybe later) for async ones.
  void DispatchAsync(HttpRequest request, const std::string& token, HttpResponder::SendFn done) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // literal, or "{name}"
    Handler handler;             // one of handler / async_handler is set
    AsyncHandler async_handler;
    bool require_token = false;
  };
  Status AddRoute(std::string method, std::string pattern, Route route, const RouteOptions& options);
  // Finds the route and fills req.path/query/params; on failure, the error
  // response to send.
  const Route* Match(HttpRequest& req, const std::string& token, HttpResponse* error) const;
  std::vector<Route> routes_;
};

}  // namespace gantry::http
