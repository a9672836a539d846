// HttpRequest / HttpResponse: the typed request a route handler sees and the
// response it returns. No Beast types here, so handlers (and their tests)
// compile without Boost.
//
// Thread safety: plain values.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gantry::http {

class SseBroadcaster;

struct HttpRequest {
  std::string method;  // "GET", "POST", ... as sent
  std::string target;  // raw request target ("/api/jobs/j1?after=3")
  std::string path;    // target without the query, still percent-encoded
  // Decoded query parameters in order of appearance ("a=1&a=2" gives two).
  std::vector<std::pair<std::string, std::string>> query;
  // Header names in lower case; a repeated header keeps its last value.
  std::map<std::string, std::string> headers;
  std::string body;
  // Route captures ("{id}" -> "j1"), percent-decoded.
  std::map<std::string, std::string> params;

  // The first query value for `name`, if any.
  std::optional<std::string> Query(const std::string& name) const;
  // The header value for a lower-case `name`, or "".
  std::string Header(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  // Set by an event-stream route: the connection stays open and receives
  // every event this broadcaster publishes (status/body are ignored).
  std::shared_ptr<SseBroadcaster> event_stream;

  static HttpResponse Text(int status, std::string body);
  static HttpResponse Json(int status, std::string body);
  // A short plain-text error page: "<status> <reason>: <message>\n".
  static HttpResponse Error(int status, const std::string& message);
  static HttpResponse EventStream(std::shared_ptr<SseBroadcaster> broadcaster);
};

// "Not Found" for 404, ... ("Unknown" for codes not listed).
const char* ReasonPhrase(int status);

}  // namespace gantry::http
