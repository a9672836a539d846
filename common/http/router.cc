#include "common/http/router.h"

#include <exception>
#include <future>
#include <optional>

#include "common/http/token.h"

namespace gantry::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 1;  // skip the leading '/'
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

bool IsCapture(std::string_view s) { return s.size() > 2 && s.front() == '{' && s.back() == '}'; }

}  // namespace

Result<std::string> PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) {
        return Status::InvalidArgument("truncated percent escape");
      }
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return Status::InvalidArgument("bad percent escape");
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return Status::InvalidArgument("NUL in URL");
    out += c;
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t i = 0;
  while (i < query.size()) {
    size_t amp = query.find('&', i);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view part = query.substr(i, amp - i);
    i = amp + 1;
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string_view key = part.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    GANTRY_ASSIGN_OR_RETURN(std::string k, PercentDecode(key, true));
    GANTRY_ASSIGN_OR_RETURN(std::string v, PercentDecode(value, true));
    out.emplace_back(std::move(k), std::move(v));
  }
  return out;
}

bool IsMutatingMethod(std::string_view m) {
  return m == "POST" || m == "PUT" || m == "PATCH" || m == "DELETE";
}

Status Router::Add(std::string method, std::string pattern, Handler handler, RouteOptions options) {
  Route r;
  r.handler = std::move(handler);
  return AddRoute(std::move(method), std::move(pattern), std::move(r), options);
}

Status Router::AddAsync(std::string method, std::string pattern, AsyncHandler handler, RouteOptions options) {
  Route r;
  r.async_handler = std::move(handler);
  return AddRoute(std::move(method), std::move(pattern), std::move(r), options);
}

Status Router::AddRoute(std::string method, std::string pattern, Route r, const RouteOptions& options) {
  if (pattern.empty() || pattern[0] != '/') {
    return Status::InvalidArgument("route pattern must start with '/': " + pattern);
  }
  if (!r.handler && !r.async_handler) return Status::InvalidArgument("route without a handler: " + pattern);
  for (std::string_view seg : SplitPath(pattern)) {
    if (seg.find('{') != std::string_view::npos || seg.find('}') != std::string_view::npos) {
      if (!IsCapture(seg)) return Status::InvalidArgument("bad capture in route pattern: " + pattern);
    }
    r.segments.emplace_back(seg);
  }
  for (const Route& other : routes_) {
    if (other.method == method && other.segments == r.segments) {
      return Status::AlreadyExists("route registered twice: " + method + " " + pattern);
    }
  }
  r.require_token = options.require_token || (IsMutatingMethod(method) && !options.public_route);
  r.method = std::move(method);
  routes_.push_back(std::move(r));
  return Status::Ok();
}

const Router::Route* Router::Match(HttpRequest& req, const std::string& token, HttpResponse* error) const {
  auto fail = [error](HttpResponse r) -> const Route* {
    *error = std::move(r);
    return nullptr;
  };
  if (req.target.empty() || req.target[0] != '/') {
    return fail(HttpResponse::Error(400, "request target must be an absolute path"));
  }
  size_t q = req.target.find('?');
  req.path = req.target.substr(0, q);
  if (q != std::string::npos) {
    auto query = ParseQuery(std::string_view(req.target).substr(q + 1));
    if (!query.ok()) return fail(HttpResponse::Error(400, "query: " + query.status().message()));
    req.query = std::move(query).value();
  }
  std::vector<std::string> segments;
  for (std::string_view raw : SplitPath(req.path)) {
    auto seg = PercentDecode(raw, false);
    if (!seg.ok()) return fail(HttpResponse::Error(400, "path: " + seg.status().message()));
    if (*seg == ".." || *seg == "." || seg->find('/') != std::string::npos) {
      return fail(HttpResponse::Error(400, "path segments '.', '..' and encoded '/' are refused"));
    }
    segments.push_back(std::move(seg).value());
  }

  const Route* best = nullptr;
  int best_literals = -1;
  bool path_matched = false;
  for (const Route& r : routes_) {
    if (r.segments.size() != segments.size()) continue;
    int literals = 0;
    bool match = true;
    for (size_t i = 0; i < segments.size() && match; ++i) {
      if (IsCapture(r.segments[i])) {
        match = !segments[i].empty();
      } else {
        match = r.segments[i] == segments[i];
        ++literals;
      }
    }
    if (!match) continue;
    path_matched = true;
    if (r.method == req.method && literals > best_literals) {
      best = &r;
      best_literals = literals;
    }
  }
  if (best == nullptr) {
    if (path_matched) return fail(HttpResponse::Error(405, req.method + " is not allowed on " + req.path));
    return fail(HttpResponse::Error(404, "no route for " + req.path));
  }
  if (best->require_token) {
    std::string auth = req.Header("authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (auth.size() <= kBearer.size() || auth.compare(0, kBearer.size(), kBearer) != 0) {
      HttpResponse r = HttpResponse::Error(401, "this endpoint needs 'Authorization: Bearer <token>'");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return fail(std::move(r));
    }
    if (token.empty() || !ConstantTimeEquals(auth.substr(kBearer.size()), token)) {
      return fail(HttpResponse::Error(403, "wrong bearer token"));
    }
  }
  for (size_t i = 0; i < segments.size(); ++i) {
    if (IsCapture(best->segments[i])) {
      const std::string& s = best->segments[i];
      req.params[s.substr(1, s.size() - 2)] = segments[i];
    }
  }
  return best;
}

HttpResponse Router::Dispatch(HttpRequest req, const std::string& token) const {
  HttpResponse error;
  const Route* route = Match(req, token, &error);
  if (route == nullptr) return error;
  if (route->async_handler) {
    std::promise<HttpResponse> answered;
    std::future<HttpResponse> answer = answered.get_future();
    DispatchAsync(std::move(req), token, [&answered](HttpResponse r) { answered.set_value(std::move(r)); });
    return answer.get();
  }
  try {
    return route->handler(req);
  } catch (const std::exception& e) {
    return HttpResponse::Error(500, std::string("handler failed: ") + e.what());
  } catch (...) {
    return HttpResponse::Error(500, "handler failed");
  }
}

void Router::DispatchAsync(HttpRequest req, const std::string& token, HttpResponder::SendFn done) const {
  HttpResponse error;
  const Route* route = Match(req, token, &error);
  if (route == nullptr) return done(std::move(error));
  if (!route->async_handler) {
    HttpResponse r;
    try {
      r = route->handler(req);
    } catch (const std::exception& e) {
      r = HttpResponse::Error(500, std::string("handler failed: ") + e.what());
    } catch (...) {
      r = HttpResponse::Error(500, "handler failed");
    }
    return done(std::move(r));
  }
  HttpResponder responder(std::move(done));
  try {
    route->async_handler(req, responder);
  } catch (const std::exception& e) {
    responder.Send(HttpResponse::Error(500, std::string("handler failed: ") + e.what()));
  } catch (...) {
    responder.Send(HttpResponse::Error(500, "handler failed"));
  }
}

}  // namespace gantry::http
