// common/http's asynchronous handlers (Router::AddAsync, HttpResponder) over
// real sockets on 127.0.0.1: answers from another thread, many requests
// waiting on one server thread, a client gone before the answer, a dropped
// responder, Stop() with answers outstanding, and the synchronous API beside.
// Synchronisation is by events (a handler that records its responder, a
// condition variable), never by sleeping.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "common/http/server.h"
#include "tests/monitor/http_test_client.h"
#include "tests/support/test_support.h"

namespace gantry::http {
namespace {

using namespace std::chrono_literals;
using gantry::testing::WaitFor;
using testing::Fetch;
using testing::RawConn;

// Responders of requests the "/later" route received, for the test to answer.
class Inbox {
 public:
  void Put(const HttpRequest& req, HttpResponder r) {
    std::lock_guard<std::mutex> l(mu_);
    items_.push_back({req.body, std::move(r)});
    cv_.notify_all();
  }
  // Waits until `n` requests are waiting (or 10 s).
  bool WaitFor(size_t n) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, 10s, [&] { return items_.size() >= n; });
  }
  std::pair<std::string, HttpResponder> Take() {
    std::lock_guard<std::mutex> l(mu_);
    auto item = std::move(items_.front());
    items_.pop_front();
    return item;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, HttpResponder>> items_;
};

class HttpAsyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto router = std::make_shared<Router>();
    ASSERT_TRUE(router->Add("GET", "/sync", [](const HttpRequest&) { return HttpResponse::Text(200, "sync\n"); }).ok());
    RouteOptions open;
    open.public_route = true;
    ASSERT_TRUE(router->AddAsync("POST", "/later", [this](const HttpRequest& r, HttpResponder out) {
      inbox_.Put(r, std::move(out));
    }, open).ok());
    ASSERT_TRUE(router->AddAsync("GET", "/now", [](const HttpRequest&, HttpResponder out) {
      out.Send(HttpResponse::Text(200, "now\n"));
      out.Send(HttpResponse::Text(500, "second answer is ignored\n"));
    }).ok());
    ASSERT_TRUE(router->AddAsync("GET", "/drop", [](const HttpRequest&, HttpResponder) {}).ok());
    ASSERT_TRUE(router->AddAsync("GET", "/throw", [](const HttpRequest&, HttpResponder) {
      throw std::runtime_error("async handler bug");
    }).ok());
    // Answers from a call deferred on its loop; the body tells whether the
    // handler's thread was a loop and the deferred call ran on that thread.
    ASSERT_TRUE(router->AddAsync("GET", "/deferred", [](const HttpRequest&, HttpResponder out) {
      const std::thread::id handler = std::this_thread::get_id();
      const bool deferred = DeferOnCurrentLoop([out, handler] {
        out.Send(HttpResponse::Text(200, std::this_thread::get_id() == handler ? "same loop\n" : "other thread\n"));
      });
      if (!deferred) out.Send(HttpResponse::Text(500, "not on a loop\n"));
    }).ok());
    router_ = router;
    HttpServerOptions o;
    o.port = 0;
    o.threads = 1;  // one thread: waiting requests must not hold it
    o.read_timeout = 10s;
    server_ = std::make_unique<HttpServer>(o, router_);
    ASSERT_TRUE(server_->Start().ok());
  }

  std::future<testing::Reply> PostLater(const std::string& body) {
    const uint16_t port = server_->port();
    return std::async(std::launch::async, [port, body] { return Fetch(port, "POST", "/later", {}, body); });
  }

  Inbox inbox_;
  std::shared_ptr<const Router> router_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpAsyncTest, AnswersFromAnotherThreadWhileOtherRequestsWait) {
  // Three requests wait at once on a one-thread server: none holds it.
  auto a = PostLater("a");
  auto b = PostLater("b");
  auto c = PostLater("c");
  ASSERT_TRUE(inbox_.WaitFor(3));
  EXPECT_EQ(Fetch(server_->port(), "GET", "/sync").status, 200);  // the thread is free
  std::vector<std::pair<std::string, HttpResponder>> waiting;
  for (int i = 0; i < 3; ++i) waiting.push_back(inbox_.Take());
  // Answered from other threads, in reverse order of arrival.
  for (int i = 2; i >= 0; --i) {
    std::thread([item = waiting[i]] {
      item.second.Send(HttpResponse::Text(201, "done " + item.first));
    }).join();
  }
  for (auto* f : {&a, &b, &c}) {
    ASSERT_EQ(f->wait_for(10s), std::future_status::ready);
    testing::Reply r = f->get();
    EXPECT_EQ(r.status, 201);
    EXPECT_EQ(r.body.substr(0, 5), "done ");
  }
  EXPECT_TRUE(waiting[0].second.sent());
}

TEST_F(HttpAsyncTest, DeferOnCurrentLoopRunsLaterOnTheHandlersLoopOnly) {
  for (int i = 0; i < 2; ++i) {  // the second on a loop that deferred before
    testing::Reply r = Fetch(server_->port(), "GET", "/deferred");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "same loop\n");
  }
  // Off a loop it refuses and the function is dropped unrun.
  bool ran = false;
  EXPECT_FALSE(DeferOnCurrentLoop([&ran] { ran = true; }));
  EXPECT_FALSE(ran);
}

TEST_F(HttpAsyncTest, KeepAliveConnectionGetsAnswersInOrder) {
  RawConn conn(server_->port());
  ASSERT_TRUE(conn.connected());
  for (const char* body : {"one", "two"}) {
    ASSERT_TRUE(conn.Send(std::string("POST /later HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n") + body));
    ASSERT_TRUE(inbox_.WaitFor(1));
    auto [got, out] = inbox_.Take();
    EXPECT_EQ(got, body);
    std::thread([o = out, got = got] { o.Send(HttpResponse::Text(200, "echo:" + got)); }).join();
    std::string seen = conn.ReadUntil(std::string("echo:") + body, 10s);
    EXPECT_NE(seen.find(std::string("echo:") + body), std::string::npos) << seen;
    conn.Clear();
  }
}

TEST_F(HttpAsyncTest, ClientGoneBeforeTheAnswerDoesNotHurtTheServer) {
  {
    RawConn conn(server_->port());
    ASSERT_TRUE(conn.connected());
    ASSERT_TRUE(conn.Send("POST /later HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\ngone"));
    ASSERT_TRUE(inbox_.WaitFor(1));
  }  // the client closes its socket here
  auto [body, out] = inbox_.Take();
  EXPECT_EQ(body, "gone");
  std::thread([o = out] { o.Send(HttpResponse::Text(200, std::string(1 << 20, 'x'))); }).join();
  // The write to the closed peer fails; the session closes; serving goes on.
  EXPECT_TRUE(WaitFor([&] { return server_->connections() == 0; }, 10s));
  EXPECT_EQ(Fetch(server_->port(), "GET", "/sync").status, 200);
  auto again = PostLater("again");
  ASSERT_TRUE(inbox_.WaitFor(1));
  inbox_.Take().second.Send(HttpResponse::Text(200, "ok"));
  ASSERT_EQ(again.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(again.get().status, 200);
}

TEST_F(HttpAsyncTest, InlineAnswerDroppedResponderAndThrowingHandler) {
  testing::Reply now = Fetch(server_->port(), "GET", "/now");
  EXPECT_EQ(now.status, 200);
  EXPECT_EQ(now.body, "now\n");
  testing::Reply dropped = Fetch(server_->port(), "GET", "/drop");
  EXPECT_EQ(dropped.status, 500);
  EXPECT_NE(dropped.body.find("dropped the request"), std::string::npos) << dropped.body;
  testing::Reply thrown = Fetch(server_->port(), "GET", "/throw");
  EXPECT_EQ(thrown.status, 500);
  EXPECT_NE(thrown.body.find("async handler bug"), std::string::npos) << thrown.body;
  // Errors before the handler are answered as for synchronous routes.
  EXPECT_EQ(Fetch(server_->port(), "POST", "/nowhere").status, 404);
  EXPECT_EQ(Fetch(server_->port(), "GET", "/later").status, 405);
}

TEST_F(HttpAsyncTest, StopWithAnswersOutstandingThenAnswerLater) {
  RawConn conn(server_->port());
  ASSERT_TRUE(conn.Send("POST /later HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nz"));
  ASSERT_TRUE(inbox_.WaitFor(1));
  auto [body, out] = inbox_.Take();
  server_->Stop();
  // The session was released with the server; the late answer goes nowhere.
  std::thread([o = out] { o.Send(HttpResponse::Text(200, "late")); }).join();
  EXPECT_TRUE(out.sent());
  conn.ReadUntil("", 2s);
  EXPECT_TRUE(conn.closed());
  EXPECT_EQ(conn.data().find("late"), std::string::npos);
  server_.reset();
}

TEST(HttpRouterAsync, DispatchBlocksUntilAnAsyncRouteAnswers) {
  Router router;
  ASSERT_TRUE(router.AddAsync("GET", "/x/{id}", [](const HttpRequest& r, HttpResponder out) {
    std::thread([out, id = r.params.at("id")] { out.Send(HttpResponse::Text(200, "id=" + id)); }).detach();
  }).ok());
  ASSERT_TRUE(router.Add("GET", "/y", [](const HttpRequest&) { return HttpResponse::Text(200, "y"); }).ok());
  EXPECT_FALSE(router.AddAsync("GET", "/x/{id}", [](const HttpRequest&, HttpResponder) {}).ok());
  HttpRequest req;
  req.method = "GET";
  req.target = "/x/42";
  HttpResponse r = router.Dispatch(req, "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "id=42");
  // DispatchAsync serves synchronous routes too, before returning.
  req.target = "/y";
  std::optional<HttpResponse> got;
  router.DispatchAsync(req, "", [&](HttpResponse res) { got = std::move(res); });
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->body, "y");
}

}  // namespace
}  // namespace gantry::http
