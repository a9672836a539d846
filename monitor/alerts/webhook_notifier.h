// WebhookNotifier: POSTs each firing and resolved transition as JSON
// (alert_json.h, TransitionToJson) to the alert's webhook URL.
//
// 1. Notify() copies the transition into a bounded queue and returns at once;
//    when the queue is full the new one is dropped and counted (the engine
//    never waits for the network).
// 2. One background thread sends the queue in order: plain HTTP/1.1 POST
//    (Boost.Beast), Content-Type application/json, Connection: close, a
//    timeout per attempt covering connect, write and read.
// 3. A 2xx answer is success. A connection error, a timeout or any other
//    status is retried after a backoff that starts at initial_backoff and
//    doubles up to max_backoff, at most max_attempts tries in all; then the
//    transition is given up and counted as failed. Retries delay the ones
//    queued behind it (order is kept), never the engine.
// 4. The destructor stops the thread: the attempt in progress finishes (at
//    most `timeout`), the backoff wait and the rest of the queue are abandoned.
//
// URLs are http://HOST[:PORT][/PATH] (rule.h CheckWebhookUrl); HOST is
// resolved with the system resolver, outside the timeout.
//
// Thread safety: Notify() and stats() from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"
#include "monitor/alerts/notifier.h"

namespace gantry::monitor::alerts {

class WebhookNotifier final : public Notifier {
 public:
  struct Options {
    // 1000 transitions: a burst of every job's alerts at once fits; beyond
    // that the receiver is down and older news is what matters.
    size_t queue_capacity = 1000;
    // 5 tries over ~7.5 s with the defaults below (0.5+1+2+4): rides out a
    // receiver restart without holding the queue for minutes.
    int max_attempts = 5;
    std::chrono::milliseconds initial_backoff{500};
    std::chrono::milliseconds max_backoff{30000};
    std::chrono::milliseconds timeout{5000};
    // Also send changes into and out of pending (off: receivers, like
    // Alertmanager's, care about firing and resolved).
    bool send_pending = false;
  };
  struct Stats {
    uint64_t sent = 0;      // delivered with a 2xx
    uint64_t failed = 0;    // given up after max_attempts
    uint64_t dropped = 0;   // refused because the queue was full
    uint64_t attempts = 0;  // POSTs tried, including retries
  };

  explicit WebhookNotifier(Options options);
  WebhookNotifier() : WebhookNotifier(Options{}) {}
  ~WebhookNotifier() override;
  WebhookNotifier(const WebhookNotifier&) = delete;
  WebhookNotifier& operator=(const WebhookNotifier&) = delete;

  // Queues `t` when its alert has a webhook and the change is one to send.
  void Notify(const Transition& t) override;
  Stats stats() const;

 private:
  struct Item {
    std::string url;
    std::string body;
  };
  void Run();
  bool Deliver(const Item& item);  // with retries; false when given up or stopping

  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;  // GUARDED_BY(mu_)
  bool stop_ = false;       // GUARDED_BY(mu_)
  Stats stats_;             // GUARDED_BY(mu_)
  std::thread thread_;      // started last, joined in the destructor
};

// One POST of `body` to `url`; returns the HTTP status, or unavailable /
// deadline_exceeded when no answer came. Used by WebhookNotifier; blocking.
Result<int> PostJson(const std::string& url, const std::string& body, std::chrono::milliseconds timeout);

}  // namespace gantry::monitor::alerts
