#include "common/http/sse.h"

#include <algorithm>

namespace gantry::http {

std::string SseClient::TakeAll() {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out.reserve(queued_bytes_);
  for (std::string& f : queue_) out += f;
  queue_.clear();
  queued_bytes_ = 0;
  return out;
}

bool SseClient::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

size_t SseClient::queued_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_bytes_;
}

void SseClient::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  queue_.clear();
  queued_bytes_ = 0;
}

bool SseClient::Push(const std::string& frame, size_t limit) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (dropped_ || closed_) return false;
    if (queued_bytes_ + frame.size() > limit) {
      dropped_ = true;
      queue_.clear();
      queued_bytes_ = 0;
    } else {
      queue_.push_back(frame);
      queued_bytes_ += frame.size();
    }
  }
  if (wake_) wake_();
  return !dropped();
}

void SseClient::Drop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    dropped_ = true;
    queue_.clear();
    queued_bytes_ = 0;
  }
  if (wake_) wake_();
}

SseBroadcaster::~SseBroadcaster() {
  std::vector<std::shared_ptr<SseClient>> clients;
  {
    std::lock_guard<std::mutex> lock(mu_);
    clients.swap(clients_);
    subscribers_.store(0, std::memory_order_relaxed);
  }
  for (auto& c : clients) c->Drop();
}

std::string SseBroadcaster::Format(std::string_view event, std::string_view data) {
  std::string out;
  if (!event.empty()) {
    out += "event: ";
    for (char c : event) {
      if (c != '\n' && c != '\r') out += c;
    }
    out += '\n';
  }
  size_t i = 0;
  do {
    size_t j = data.find('\n', i);
    if (j == std::string_view::npos) j = data.size();
    std::string_view line = data.substr(i, j - i);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out += "data: ";
    out += line;
    out += '\n';
    i = j + 1;
  } while (i <= data.size());
  out += '\n';
  return out;
}

void SseBroadcaster::Publish(std::string_view event, std::string_view data) {
  Broadcast(Format(event, data));
}

void SseBroadcaster::PublishComment(std::string_view text) {
  std::string frame = ": ";
  for (char c : text) {
    if (c != '\n' && c != '\r') frame += c;
  }
  frame += "\n\n";
  Broadcast(frame);
}

void SseBroadcaster::Broadcast(const std::string& frame) {
  // Push under the broadcaster lock so that a client sees events in order;
  // a client's wake only posts work to its connection, it never blocks.
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.published;
  PruneClosedLocked();
  for (auto it = clients_.begin(); it != clients_.end();) {
    SseClient& c = **it;
    if (c.Push(frame, options_.max_queued_bytes)) {
      stats_.max_queued_bytes = std::max(stats_.max_queued_bytes, c.queued_bytes());
      ++it;
    } else {
      if (c.dropped()) ++stats_.dropped;
      it = clients_.erase(it);
    }
  }
  subscribers_.store(clients_.size(), std::memory_order_relaxed);
}

std::shared_ptr<SseClient> SseBroadcaster::Subscribe(std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(mu_);
  PruneClosedLocked();
  if (clients_.size() >= options_.max_clients) return nullptr;
  auto client = std::make_shared<SseClient>(std::move(wake));
  clients_.push_back(client);
  subscribers_.store(clients_.size(), std::memory_order_relaxed);
  return client;
}

void SseBroadcaster::Unsubscribe(const std::shared_ptr<SseClient>& client) { client->Close(); }

void SseBroadcaster::PruneClosedLocked() {
  clients_.erase(std::remove_if(clients_.begin(), clients_.end(),
                                [](const std::shared_ptr<SseClient>& c) {
                                  std::lock_guard<std::mutex> lock(c->mu_);
                                  return c->closed_;
                                }),
                 clients_.end());
  subscribers_.store(clients_.size(), std::memory_order_relaxed);
}

SseBroadcaster::Stats SseBroadcaster::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.clients = 0;
  for (const auto& c : clients_) {
    std::lock_guard<std::mutex> client_lock(c->mu_);
    if (!c->closed_ && !c->dropped_) ++s.clients;
  }
  return s;
}

}  // namespace gantry::http
