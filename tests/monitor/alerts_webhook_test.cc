// The webhook notifier against a real loopback listener: a raw-socket HTTP
// server that answers 500 first and 200 after, so the retry is seen.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <limits>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "common/protocol.h"
#include "monitor/alerts/engine.h"
#include "monitor/alerts/webhook_notifier.h"
#include "tests/monitor/test_support.h"

namespace gantry::monitor::alerts {
namespace {

using namespace std::chrono_literals;

// Accepts connections on 127.0.0.1:<free port>; answers the first `failures`
// requests with 500 and the rest with 200; keeps each request's body.
class Listener {
 public:
  explicit Listener(int failures) : failures_(failures) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~Listener() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  std::vector<std::string> Requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::string req = ReadRequest(c);
      bool fail;
      {
        std::lock_guard<std::mutex> l(mu_);
        requests_.push_back(req);
        fail = static_cast<int>(requests_.size()) <= failures_;
      }
      std::string answer = fail ? "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops"
                                : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
      (void)!::write(c, answer.data(), answer.size());
      ::close(c);
    }
  }
  // Headers, then Content-Length bytes of body.
  static std::string ReadRequest(int c) {
    std::string data;
    char buf[4096];
    size_t want = std::string::npos;
    while (data.size() < want) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 2000) <= 0) break;
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) break;
      data.append(buf, static_cast<size_t>(n));
      size_t end = data.find("\r\n\r\n");
      if (end != std::string::npos && want == std::string::npos) {
        size_t cl = data.find("Content-Length: ");
        size_t len = cl == std::string::npos ? 0 : std::stoul(data.substr(cl + 16));
        want = end + 4 + len;
      }
    }
    return data;
  }

  int failures_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> requests_;  // GUARDED_BY(mu_)
  std::thread thread_;
};

std::string Body(const std::string& request) {
  size_t end = request.find("\r\n\r\n");
  return end == std::string::npos ? "" : request.substr(end + 4);
}

Transition Firing(const std::string& url) {
  ManualClock clock;
  Rule rule;
  rule.name = "loss-nan";
  rule.kind = RuleKind::kNonFinite;
  rule.metric = "loss";
  rule.action = Action::kCancel;
  rule.webhook = url;
  AlertEngine engine(clock, {rule});
  auto ts = engine.ObserveMetrics(MetricSample{"job-7", 1, 0, 120, {{"loss", std::numeric_limits<double>::quiet_NaN()}}});
  EXPECT_EQ(ts.size(), 1u);
  return ts.at(0);
}

TEST(AlertWebhookTest, RetriesAfter500AndDeliversTheTransition) {
  Listener listener(/*failures=*/1);
  WebhookNotifier::Options options;
  options.initial_backoff = 10ms;
  options.max_attempts = 3;
  WebhookNotifier notifier(options);
  notifier.Notify(Firing(listener.Url()));

  ASSERT_TRUE(testing::WaitFor([&] { return notifier.stats().sent == 1; }, 10s));
  auto requests = listener.Requests();
  ASSERT_EQ(requests.size(), 2u);  // the 500, then the retry that got 200
  EXPECT_EQ(requests[0].rfind("POST /hook HTTP/1.1\r\n", 0), 0u) << requests[0];
  EXPECT_NE(requests[0].find("Content-Type: application/json"), std::string::npos);
  EXPECT_EQ(Body(requests[0]), Body(requests[1]));
  json body = json::parse(Body(requests[1]));
  EXPECT_EQ(body["to"], "firing");
  EXPECT_EQ(body["from"], "inactive");
  EXPECT_EQ(body["action"], "cancel");
  EXPECT_EQ(body["alert"]["rule"], "loss-nan");
  EXPECT_EQ(body["alert"]["job"], "job-7");
  EXPECT_EQ(body["alert"]["why"], "loss is NaN at step 120");
  EXPECT_TRUE(body["alert"]["value"].is_null());
  auto st = notifier.stats();
  EXPECT_EQ(st.attempts, 2u);
  EXPECT_EQ(st.failed, 0u);
}

TEST(AlertWebhookTest, GivesUpAfterMaxAttempts) {
  Listener listener(/*failures=*/100);
  WebhookNotifier::Options options;
  options.initial_backoff = 5ms;
  options.max_attempts = 3;
  WebhookNotifier notifier(options);
  notifier.Notify(Firing(listener.Url()));
  ASSERT_TRUE(testing::WaitFor([&] { return notifier.stats().failed == 1; }, 10s));
  EXPECT_EQ(listener.Requests().size(), 3u);
  EXPECT_EQ(notifier.stats().attempts, 3u);
  EXPECT_EQ(notifier.stats().sent, 0u);
}

TEST(AlertWebhookTest, ConnectionRefusedIsRetriedAndNeverBlocksNotify) {
  int port = 0;
  {
    Listener gone(0);  // a port that was free a moment ago and now refuses
    port = std::stoi(gone.Url().substr(std::string("http://127.0.0.1:").size()));
  }
  WebhookNotifier::Options options;
  options.initial_backoff = 5ms;
  options.max_attempts = 2;
  options.queue_capacity = 4;
  WebhookNotifier notifier(options);
  Transition t = Firing("http://127.0.0.1:" + std::to_string(port) + "/hook");
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i) notifier.Notify(t);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);  // queueing only
  ASSERT_TRUE(testing::WaitFor([&] {
    auto s = notifier.stats();
    return s.failed + s.dropped == 50;
  }, 10s));
  EXPECT_GE(notifier.stats().dropped, 40u);  // about capacity + the ones in flight got queued
  EXPECT_EQ(notifier.stats().sent, 0u);
}

TEST(AlertWebhookTest, PendingAndUrlLessTransitionsAreNotSent) {
  Listener listener(0);
  WebhookNotifier notifier;
  Transition t = Firing(listener.Url());
  t.to = AlertState::kPending;
  notifier.Notify(t);
  Transition no_url = Firing("");
  notifier.Notify(no_url);
  Transition sent = Firing(listener.Url());
  notifier.Notify(sent);
  ASSERT_TRUE(testing::WaitFor([&] { return notifier.stats().sent == 1; }, 10s));
  EXPECT_EQ(listener.Requests().size(), 1u);
}

}  // namespace
}  // namespace gantry::monitor::alerts
