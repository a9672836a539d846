// The monitor's HTTP server over real sockets on 127.0.0.1 (port 0): routes,
// limits, token, traversal, keep-alive, slow clients and Server-Sent Events.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>

#include "common/http/server.h"
#include "common/http/sse.h"
#include "common/http/static_files.h"
#include "tests/monitor/http_test_client.h"
#include "tests/support/test_support.h"

namespace gantry::http {
namespace {

using namespace std::chrono_literals;
using gantry::testing::TempDir;
using gantry::testing::WaitFor;
using testing::Fetch;
using testing::RawConn;

constexpr const char* kToken = "s3cret-token-0123456789abcdef";

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto router = std::make_shared<Router>();
    ASSERT_TRUE(router->Add("GET", "/healthz", [](const HttpRequest&) {
      return HttpResponse::Text(200, "ok\n");
    }).ok());
    ASSERT_TRUE(router->Add("GET", "/api/jobs/{id}/metrics", [](const HttpRequest& r) {
      return HttpResponse::Text(200, r.params.at("id") + "|" + r.Query("after").value_or("-") + "|" +
                                         r.Query("name").value_or("-"));
    }).ok());
    ASSERT_TRUE(router->Add("POST", "/api/echo", [](const HttpRequest& r) {
      return HttpResponse::Text(200, r.body);
    }).ok());
    ASSERT_TRUE(router->Add("GET", "/boom", [](const HttpRequest&) -> HttpResponse {
      throw std::runtime_error("handler bug");
    }).ok());
    ASSERT_TRUE(router->Add("GET", "/events", [this](const HttpRequest&) {
      return HttpResponse::EventStream(events_);
    }).ok());
    // Static files: one from a temp folder, one embedded page.
    ASSERT_TRUE(WriteFile(dir_.path() + "/app.js", "console.log('gantry');\n"));
    StaticFiles files;
    ASSERT_TRUE(files.AddFiles("/static", dir_.path(), {"app.js", "missing.css"}).ok());
    ASSERT_TRUE(files.AddEmbedded("/", "<!doctype html><title>gantry</title>", "text/html; charset=utf-8").ok());
    ASSERT_TRUE(files.Install(*router).ok());
    router_ = router;
  }

  void StartServer() {
    server_ = std::make_unique<HttpServer>(options_, router_);
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_NE(server_->port(), 0);
  }

  bool Healthy() { return Fetch(server_->port(), "GET", "/healthz").status == 200; }

  static bool WriteFile(const std::string& path, const std::string& text) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) return false;
    std::fputs(text.c_str(), f);
    return std::fclose(f) == 0;
  }

  TempDir dir_;
  HttpServerOptions options_{.address = "127.0.0.1",
                             .port = 0,
                             .threads = 2,
                             .max_header_bytes = 2048,
                             .max_body_bytes = 1000,
                             .max_connections = 8,
                             .read_timeout = 2000ms,
                             .write_timeout = 1000ms,
                             .sse_heartbeat = 15000ms,
                             .token = kToken};
  std::shared_ptr<SseBroadcaster> events_ =
      std::make_shared<SseBroadcaster>(SseOptions{.max_queued_bytes = 64 * 1024, .max_clients = 4});
  std::shared_ptr<const Router> router_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, RoutesCapturesAndDecodedQuery) {
  StartServer();
  auto r = Fetch(server_->port(), "GET", "/api/jobs/j%201/metrics?after=3&name=a%2Bb+c");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "j 1|3|a+b c");
  EXPECT_EQ(Fetch(server_->port(), "GET", "/api/jobs/j1/metrics").body, "j1|-|-");
  EXPECT_EQ(Fetch(server_->port(), "GET", "/nope").status, 404);
  EXPECT_EQ(Fetch(server_->port(), "DELETE", "/healthz", {{"Authorization", "Bearer x"}}).status, 405);
  EXPECT_EQ(Fetch(server_->port(), "GET", "/api/jobs/j1/metrics?x=%zz").status, 400);
  EXPECT_EQ(Fetch(server_->port(), "GET", "/boom").status, 500);
  EXPECT_TRUE(Healthy());
}

TEST_F(HttpServerTest, MutatingRouteNeedsTheBearerToken) {
  StartServer();
  auto none = Fetch(server_->port(), "POST", "/api/echo", {}, "hi");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.headers["WWW-Authenticate"], "Bearer");
  EXPECT_EQ(Fetch(server_->port(), "POST", "/api/echo", {{"Authorization", "Basic abc"}}, "hi").status, 401);
  EXPECT_EQ(Fetch(server_->port(), "POST", "/api/echo", {{"Authorization", "Bearer wrong"}}, "hi").status, 403);
  std::string almost = kToken;
  almost.back() = 'X';
  EXPECT_EQ(Fetch(server_->port(), "POST", "/api/echo", {{"Authorization", "Bearer " + almost}}, "hi").status,
            403);
  auto ok = Fetch(server_->port(), "POST", "/api/echo", {{"Authorization", std::string("Bearer ") + kToken}}, "hi");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "hi");
  EXPECT_TRUE(Healthy());
}

TEST_F(HttpServerTest, EmptyServerTokenRefusesMutatingRoutes) {
  options_.token.clear();
  StartServer();
  EXPECT_EQ(Fetch(server_->port(), "POST", "/api/echo", {{"Authorization", "Bearer "}}, "hi").status, 401);
  EXPECT_EQ(Fetch(server_->port(), "POST", "/api/echo", {{"Authorization", "Bearer x"}}, "hi").status, 403);
}

TEST_F(HttpServerTest, MalformedRequestsGet400AndServerKeepsServing) {
  StartServer();
  const char* bad[] = {
      "NOT A REQUEST\r\n\r\n",
      "GET / HTTP/9.9\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
      "GET / HTTP/1.1\r\nbad header line\r\n\r\n",
      "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "\x01\x02\x03\xff\r\n\r\n",
  };
  for (const char* req : bad) {
    RawConn c(server_->port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.Send(req));
    std::string got = c.ReadUntil("", 5000ms);
    EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 400") << "request: " << req << "\nreply: " << got;
    EXPECT_TRUE(c.closed());
    EXPECT_TRUE(Healthy());
  }
}

TEST_F(HttpServerTest, RandomBytesNeverCrashTheServer) {
  StartServer();
  std::mt19937 rng(7);
  const std::string prefixes[] = {"", "GET ", "GET /healthz HTTP/1.1\r\n", "POST /api/echo HTTP/1.1\r\nContent-Length: 5\r\n"};
  for (int i = 0; i < 200; ++i) {
    std::string req = prefixes[i % 4];
    int n = static_cast<int>(rng() % 300);
    for (int j = 0; j < n; ++j) {
      // Mostly printable, with CR/LF and arbitrary bytes mixed in.
      uint32_t r = rng() % 16;
      req += r == 0 ? '\r' : r == 1 ? '\n' : r == 2 ? static_cast<char>(rng() % 256) : static_cast<char>(32 + rng() % 95);
    }
    req += "\r\n\r\n";
    RawConn c(server_->port());
    ASSERT_TRUE(c.connected());
    c.Send(req);
    std::string got = c.ReadUntil("\r\n\r\n", 5000ms);
    if (!got.empty()) {
      EXPECT_EQ(got.substr(0, 9), "HTTP/1.1 ") << got;
      int status = std::atoi(got.substr(9, 3).c_str());
      EXPECT_TRUE(status == 200 || (status >= 400 && status < 500)) << "status " << status << " for " << req;
    }
  }
  EXPECT_TRUE(Healthy());
}

TEST_F(HttpServerTest, OversizedHeaderGets431AndOversizedBody413) {
  StartServer();
  {
    RawConn c(server_->port());
    ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n"));
    const std::string reply = c.ReadUntil("", 5000ms);
    EXPECT_EQ(reply.substr(0, 12), "HTTP/1.1 431") << reply;
    EXPECT_NE(reply.find("headers exceed"), std::string::npos) << reply;
  }
  EXPECT_TRUE(Healthy());
  {
    // Declared too large: refused before the body is read.
    RawConn c(server_->port());
    ASSERT_TRUE(c.Send(std::string("POST /api/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") + kToken +
                       "\r\nContent-Length: 100000\r\n\r\n"));
    EXPECT_EQ(c.ReadUntil("", 5000ms).substr(0, 12), "HTTP/1.1 413");
  }
  {
    // Chunked, growing past the limit.
    RawConn c(server_->port());
    std::string chunk = "3e8\r\n" + std::string(1000, 'b') + "\r\n";
    ASSERT_TRUE(c.Send(std::string("POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                   "Authorization: Bearer ") + kToken + "\r\n\r\n" + chunk));
    c.Send(chunk);
    EXPECT_EQ(c.ReadUntil("", 5000ms).substr(0, 12), "HTTP/1.1 413");
  }
  auto at_limit = Fetch(server_->port(), "POST", "/api/echo", {{"Authorization", std::string("Bearer ") + kToken}},
                        std::string(1000, 'c'));
  EXPECT_EQ(at_limit.status, 200);
  EXPECT_EQ(at_limit.body.size(), 1000u);
}

TEST_F(HttpServerTest, TraversalIsRefusedAndStaticFilesServed) {
  StartServer();
  auto js = Fetch(server_->port(), "GET", "/static/app.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.body, "console.log('gantry');\n");
  EXPECT_EQ(js.headers["Content-Type"], "text/javascript; charset=utf-8");
  EXPECT_EQ(js.headers["X-Content-Type-Options"], "nosniff");
  auto page = Fetch(server_->port(), "GET", "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.headers["Content-Type"], "text/html; charset=utf-8");
  EXPECT_EQ(Fetch(server_->port(), "GET", "/static/missing.css").status, 404);
  EXPECT_EQ(Fetch(server_->port(), "GET", "/static/other.js").status, 404);
  for (const char* t : {"/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd",
                        "/static/..%2f..%2fetc%2fpasswd", "/static/./app.js", "/static/app.js%00"}) {
    auto r = Fetch(server_->port(), "GET", t);
    EXPECT_TRUE(r.status == 400 || r.status == 404) << t << " -> " << r.status;
    EXPECT_EQ(r.body.find("root:"), std::string::npos) << t;
  }
  EXPECT_TRUE(Healthy());
}

TEST_F(HttpServerTest, DygraphsFromDebianPackage) {
  const std::string js = std::string(kDygraphsDir) + "/dygraph.min.js";
  if (::access(js.c_str(), R_OK) != 0) GTEST_SKIP() << "libjs-dygraphs is not installed (" << js << ")";
  auto router = std::make_shared<Router>();
  StaticFiles files;
  ASSERT_TRUE(files.AddFiles("/static/dygraphs", kDygraphsDir, {"dygraph.min.js", "dygraph.min.css"}).ok());
  ASSERT_TRUE(files.Install(*router).ok());
  router_ = router;
  StartServer();
  auto r = Fetch(server_->port(), "GET", "/static/dygraphs/dygraph.min.js");
  EXPECT_EQ(r.status, 200);
  EXPECT_GT(r.body.size(), 10000u);
  EXPECT_EQ(r.headers["Content-Type"], "text/javascript; charset=utf-8");
  EXPECT_EQ(Fetch(server_->port(), "GET", "/static/dygraphs/dygraph.min.css").headers["Content-Type"],
            "text/css; charset=utf-8");
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  StartServer();
  RawConn c(server_->port());
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /api/jobs/a/metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string got = c.ReadUntil("a|-|-", 5000ms);
  EXPECT_NE(got.find("ok\n"), std::string::npos);
  EXPECT_NE(got.find("a|-|-"), std::string::npos);
  EXPECT_FALSE(c.closed());
}

TEST_F(HttpServerTest, SlowlorisClientIsDropped) {
  options_.read_timeout = 300ms;
  StartServer();
  RawConn c(server_->port());
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\n"));
  auto start = std::chrono::steady_clock::now();
  // One header byte every 50 ms: each read makes progress, the request never ends.
  bool sending = true;
  while (sending && std::chrono::steady_clock::now() - start < 5s) {
    sending = c.Send("X");
    c.ReadUntil("\r\n\r\n", 50ms);
    if (c.closed()) break;
  }
  EXPECT_TRUE(c.closed() || !sending);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ(c.data().find("200 OK"), std::string::npos);
  EXPECT_TRUE(WaitFor([&] { return server_->connections() == 0; }));
  EXPECT_TRUE(Healthy());
}

TEST_F(HttpServerTest, ConnectionLimitAnswers503) {
  options_.max_connections = 2;
  StartServer();
  auto a = std::make_unique<RawConn>(server_->port());
  RawConn b(server_->port());
  ASSERT_TRUE(WaitFor([&] { return server_->connections() == 2; }));
  RawConn c(server_->port());
  EXPECT_EQ(c.ReadUntil("", 5000ms).substr(0, 12), "HTTP/1.1 503");
  a.reset();
  ASSERT_TRUE(WaitFor([&] { return server_->connections() == 1; }));
  EXPECT_TRUE(Healthy());
}

TEST_F(HttpServerTest, EventStreamDeliversEventsPublishedAfterConnect) {
  StartServer();
  RawConn c(server_->port());
  ASSERT_TRUE(c.Send("GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"));
  std::string head = c.ReadUntil(":ok\n\n", 5000ms);
  ASSERT_NE(head.find(":ok\n\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Content-Type: text/event-stream"), std::string::npos);
  EXPECT_EQ(events_->stats().clients, 1u);
  events_->Publish("point", "{\"job\":\"j1\",\"step\":7}");
  events_->Publish("alert", "line one\nline two");
  std::string got = c.ReadUntil("data: line two\n\n", 5000ms);
  EXPECT_NE(got.find("event: point\ndata: {\"job\":\"j1\",\"step\":7}\n\n"), std::string::npos) << got;
  EXPECT_NE(got.find("event: alert\ndata: line one\ndata: line two\n\n"), std::string::npos) << got;
  EXPECT_TRUE(Healthy());
}

TEST_F(HttpServerTest, SlowEventStreamClientIsDroppedWithBoundedMemory) {
  options_.write_timeout = 500ms;
  StartServer();
  RawConn fast(server_->port());
  RawConn slow(server_->port(), /*rcvbuf=*/4096);
  for (RawConn* c : {&fast, &slow}) {
    ASSERT_TRUE(c->Send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_NE(c->ReadUntil(":ok\n\n", 5000ms).find(":ok"), std::string::npos);
  }
  ASSERT_EQ(events_->stats().clients, 2u);
  // The slow client never reads again. Publish until the broadcaster gives
  // up on it; the fast client reads every event before the next is published.
  const std::string payload(4000, 'p');
  int published = 0;
  bool fast_kept_up = true;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (events_->stats().dropped == 0 && std::chrono::steady_clock::now() < deadline && published < 100000) {
    std::string marker = "n=" + std::to_string(published) + " ";
    events_->Publish("tick", marker + payload);
    ++published;
    fast_kept_up = fast.ReadUntil(marker, 5000ms).find(marker) != std::string::npos;
    if (!fast_kept_up) break;
    fast.Clear();
  }
  EXPECT_TRUE(fast_kept_up) << "fast client missed event " << published - 1;
  auto stats = events_->stats();
  std::cout << "slow SSE client dropped after " << published << " events of " << payload.size() << " bytes\n";
  EXPECT_EQ(stats.dropped, 1u) << "after " << published << " events";
  EXPECT_LE(stats.max_queued_bytes, 64u * 1024);
  EXPECT_EQ(stats.clients, 1u);
  // The slow client's connection is closed; the fast one still receives.
  EXPECT_TRUE(WaitFor([&] { return server_->connections() == 1; }, 10s));
  events_->Publish("last", "bye");
  EXPECT_NE(fast.ReadUntil("data: bye\n\n", 10000ms).find("data: bye\n\n"), std::string::npos);
  EXPECT_TRUE(Healthy());
}

TEST_F(HttpServerTest, StopClosesConnectionsAndFreesThePort) {
  StartServer();
  RawConn c(server_->port());
  ASSERT_TRUE(c.Send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_NE(c.ReadUntil(":ok\n\n", 5000ms).find(":ok"), std::string::npos);
  // A publisher keeps going while the server stops (no post into a dead io_context).
  std::atomic<bool> done{false};
  std::thread publisher([&] {
    while (!done) events_->Publish("tick", "x");
  });
  server_->Stop();
  done = true;
  publisher.join();
  c.ReadUntil("never", 5000ms);
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(events_->stats().clients, 0u);
}

}  // namespace
}  // namespace gantry::http
