#include "monitor/alerts/webhook_notifier.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/log.h"
#include "monitor/alerts/alert_json.h"
#include "monitor/alerts/rule.h"

namespace gantry::monitor::alerts {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// Answers are read only for their status; a receiver's body is capped.
constexpr uint64_t kMaxResponseBody = 64 * 1024;

struct Url {
  std::string host;
  std::string port = "80";
  std::string target = "/";
};

Result<Url> ParseUrl(const std::string& url) {
  GANTRY_RETURN_IF_ERROR(CheckWebhookUrl(url));
  Url u;
  std::string rest = url.substr(std::string("http://").size());
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) u.target = rest.substr(slash);
  size_t colon = authority.rfind(':');
  if (colon != std::string::npos) {
    u.port = authority.substr(colon + 1);
    authority = authority.substr(0, colon);
  }
  u.host = authority;
  if (u.host.empty() || u.port.empty()) return Status::InvalidArgument("webhook URL needs a host: " + url);
  return u;
}

}  // namespace

Result<int> PostJson(const std::string& url, const std::string& body, std::chrono::milliseconds timeout) {
  GANTRY_ASSIGN_OR_RETURN(Url u, ParseUrl(url));
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto endpoints = resolver.resolve(u.host, u.port, ec);
  if (ec) return Status::Unavailable("webhook " + url + ": cannot resolve " + u.host + ": " + ec.message());

  beast::tcp_stream stream(ioc);
  http::request<http::string_body> req{http::verb::post, u.target, 11};
  req.set(http::field::host, u.host + ":" + u.port);
  req.set(http::field::user_agent, "gantry-monitor");
  req.set(http::field::content_type, "application/json");
  req.keep_alive(false);
  req.body() = body;
  req.prepare_payload();
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBody);
  beast::flat_buffer buffer;

  // Async operations, because tcp_stream's expiry applies only to them: the
  // whole exchange shares one deadline.
  beast::error_code result;
  bool answered = false;
  stream.expires_after(timeout);
  stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) {
    if (e) {
      result = e;
      return;
    }
    http::async_write(stream, req, [&](beast::error_code e2, size_t) {
      if (e2) {
        result = e2;
        return;
      }
      http::async_read(stream, buffer, parser, [&](beast::error_code e3, size_t) {
        result = e3;
        answered = !e3;
      });
    });
  });
  ioc.run();
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  if (result == beast::error::timeout) {
    return Status::DeadlineExceeded("webhook " + url + ": no answer within " + std::to_string(timeout.count()) + " ms");
  }
  if (!answered) return Status::Unavailable("webhook " + url + ": " + result.message());
  return static_cast<int>(parser.get().result_int());
}

WebhookNotifier::WebhookNotifier(Options options) : options_(std::move(options)) {
  thread_ = std::thread([this] { Run(); });
}

WebhookNotifier::~WebhookNotifier() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void WebhookNotifier::Notify(const Transition& t) {
  if (t.alert.webhook.empty()) return;
  bool wanted = t.to == AlertState::kFiring || t.to == AlertState::kResolved;
  if (!wanted && !options_.send_pending) return;
  Item item{t.alert.webhook, TransitionToJson(t).dump()};
  {
    std::lock_guard<std::mutex> l(mu_);
    if (queue_.size() >= options_.queue_capacity) {
      ++stats_.dropped;
      return;
    }
    queue_.push_back(std::move(item));
  }
  cv_.notify_all();
}

WebhookNotifier::Stats WebhookNotifier::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

void WebhookNotifier::Run() {
  while (true) {
    Item item;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    bool ok = Deliver(item);
    std::lock_guard<std::mutex> l(mu_);
    if (ok) ++stats_.sent;
    else if (!stop_) ++stats_.failed;
  }
}

bool WebhookNotifier::Deliver(const Item& item) {
  auto backoff = options_.initial_backoff;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    {
      std::lock_guard<std::mutex> l(mu_);
      ++stats_.attempts;
    }
    auto status = PostJson(item.url, item.body, options_.timeout);
    if (status.ok() && *status >= 200 && *status < 300) return true;
    std::string why = status.ok() ? "HTTP " + std::to_string(*status) : status.status().message();
    if (attempt == options_.max_attempts) {
      spdlog::warn("alert webhook {} given up after {} attempts: {}", item.url, attempt, why);
      return false;
    }
    std::unique_lock<std::mutex> l(mu_);
    if (cv_.wait_for(l, backoff, [&] { return stop_; })) return false;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  return false;
}

}  // namespace gantry::monitor::alerts
