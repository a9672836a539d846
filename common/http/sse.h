// SseBroadcaster: Server-Sent Events fan-out from any thread to the HTTP
// connections that hold an event-stream route open.
//
// Publish() formats an event once ("event: <name>\ndata: <line>\n...\n\n")
// and appends it to every subscriber's queue. Each queue is bounded by
// SseOptions::max_queued_bytes: a subscriber whose queue would pass it (a
// client that does not read fast enough) is dropped, i.e. removed from the
// broadcaster and marked so that its connection closes; memory per client
// stays below max_queued_bytes plus the one batch being written. The number
// of subscribers is bounded by max_clients (Subscribe() returns null past it).
//
// Ownership: clients are shared between the broadcaster and their HTTP
// session; the session unsubscribes when its connection ends.
// Thread safety: every member function is thread-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace gantry::http {

struct SseOptions {
  size_t max_queued_bytes = 1 << 20;  // per client
  size_t max_clients = 64;
};

// One subscriber's queue. The HTTP session drains it; `wake` (set at
// Subscribe) is called, from the publishing thread, after every change.
class SseClient {
 public:
  explicit SseClient(std::function<void()> wake) : wake_(std::move(wake)) {}
  // Everything queued, concatenated, and the queue emptied.
  std::string TakeAll();
  // True once the client was dropped for falling behind (or the broadcaster
  // is gone); its connection should close.
  bool dropped() const;
  size_t queued_bytes() const;
  // The connection ended: the broadcaster forgets this client at its next
  // publish or subscribe. Takes no broadcaster lock (safe from destructors).
  void Close();

 private:
  friend class SseBroadcaster;
  // False (and dropped) when `frame` does not fit under `limit`.
  bool Push(const std::string& frame, size_t limit);
  void Drop();

  std::function<void()> wake_;
  mutable std::mutex mu_;
  std::deque<std::string> queue_;
  size_t queued_bytes_ = 0;
  bool dropped_ = false;
  bool closed_ = false;
};

class SseBroadcaster {
 public:
  explicit SseBroadcaster(SseOptions options = {}) : options_(options) {}
  ~SseBroadcaster();
  SseBroadcaster(const SseBroadcaster&) = delete;
  SseBroadcaster& operator=(const SseBroadcaster&) = delete;

  // Sends one event to every client. `event` may be empty (then no `event:`
  // line; CR/LF in it are removed); `data` may have several lines.
  void Publish(std::string_view event, std::string_view data);
  // A comment line (": text"), e.g. a keep-alive; clients ignore it.
  void PublishComment(std::string_view text);
  // False when nobody is subscribed, so a publisher can skip formatting an
  // event nobody would receive (the monitor's per-point events). A client
  // that closed counts until the next publish or subscribe forgets it.
  bool HasClients() const { return subscribers_.load(std::memory_order_relaxed) > 0; }

  // A new client woken through `wake`; null when max_clients are connected.
  std::shared_ptr<SseClient> Subscribe(std::function<void()> wake);
  // Same as client->Close().
  void Unsubscribe(const std::shared_ptr<SseClient>& client);

  struct Stats {
    size_t clients = 0;
    uint64_t published = 0;
    uint64_t dropped = 0;          // clients dropped for falling behind
    size_t max_queued_bytes = 0;   // the largest queue seen at any client
  };
  Stats stats() const;

  // The wire form of one event (exposed for tests).
  static std::string Format(std::string_view event, std::string_view data);

 private:
  void Broadcast(const std::string& frame);
  void PruneClosedLocked();

  const SseOptions options_;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<SseClient>> clients_;
  std::atomic<size_t> subscribers_{0};  // clients_.size(), written under mu_
  Stats stats_;
};

}  // namespace gantry::http
