#include "cli/http_get.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace gantry::cli {
namespace {

// Closes the socket on every path out.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Waits for `events` on fd until `deadline`; false on timeout.
bool WaitFd(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd, events, 0};
  int rc;
  do {
    rc = ::poll(&p, 1, static_cast<int>(left.count()));
  } while (rc < 0 && errno == EINTR);
  return rc > 0;
}

}  // namespace

Result<HttpReply> HttpGet(const std::string& host, int port, const std::string& path,
                          std::chrono::milliseconds timeout) {
  const std::string where = "http://" + host + ":" + std::to_string(port) + path;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return Status::InvalidArgument(where + ": host must be an IPv4 address");
  }
  Fd s{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  if (s.fd < 0) return Status::Unavailable(where + ": socket: " + strerror(errno));
  if (::connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) return Status::Unavailable(where + ": " + strerror(errno));
    if (!WaitFd(s.fd, POLLOUT, deadline)) return Status::Unavailable(where + ": connect timed out");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return Status::Unavailable(where + ": " + strerror(err));
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(port) +
                    "\r\nConnection: close\r\nAccept: application/json\r\n\r\n";
  size_t sent = 0;
  while (sent < req.size()) {
    if (!WaitFd(s.fd, POLLOUT, deadline)) return Status::Unavailable(where + ": send timed out");
    ssize_t n = ::send(s.fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) return Status::Unavailable(where + ": " + strerror(errno));
    if (n > 0) sent += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[4096];
  while (true) {
    if (!WaitFd(s.fd, POLLIN, deadline)) return Status::Unavailable(where + ": no reply in time");
    ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return Status::Unavailable(where + ": " + strerror(errno));
    }
    raw.append(buf, static_cast<size_t>(n));
    if (raw.size() > (4 << 20)) return Status::Unavailable(where + ": reply larger than 4 MiB");
  }
  HttpReply reply;
  if (std::sscanf(raw.c_str(), "HTTP/%*d.%*d %d", &reply.status) != 1) {
    return Status::Unavailable(where + ": not an HTTP reply");
  }
  auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return Status::Unavailable(where + ": truncated reply");
  std::string head = raw.substr(0, head_end);
  reply.body = raw.substr(head_end + 4);
  // Chunked bodies (Beast answers with them for streamed replies): undo the framing.
  std::string lower = head;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("transfer-encoding: chunked") != std::string::npos) {
    std::string body;
    size_t pos = 0;
    while (pos < reply.body.size()) {
      size_t eol = reply.body.find("\r\n", pos);
      if (eol == std::string::npos) break;
      size_t size = std::strtoul(reply.body.substr(pos, eol - pos).c_str(), nullptr, 16);
      if (size == 0) break;
      body += reply.body.substr(eol + 2, size);
      pos = eol + 2 + size + 2;
    }
    reply.body = std::move(body);
  }
  return reply;
}

}  // namespace gantry::cli
