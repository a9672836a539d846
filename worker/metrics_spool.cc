#include "worker/metrics_spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gantry::worker {
namespace {

constexpr size_t kHeaderBytes = 12;  // seq u64 + length u32, host byte order

Status Errno(const std::string& what, const std::string& path) {
  return Status::Internal("metrics spool " + path + ": " + what + ": " + std::strerror(errno));
}

bool WriteAll(int fd, const char* p, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w, n -= static_cast<size_t>(w), off += static_cast<uint64_t>(w);
  }
  return true;
}

bool ReadAll(int fd, char* p, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r, n -= static_cast<size_t>(r), off += static_cast<uint64_t>(r);
  }
  return true;
}

}  // namespace

MetricsSpool::MetricsSpool(MetricsSpoolOptions options) : options_(std::move(options)) {
  if (options_.memory_points == 0) options_.memory_points = 1;
}

MetricsSpool::~MetricsSpool() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(options_.spill_path.c_str());
  }
}

bool MetricsSpool::Full() const {
  if (size() >= options_.max_points) return true;
  return options_.spill_path.empty() && memory_.size() >= options_.memory_points;
}

bool MetricsSpool::Add(std::string frame) {
  if (Full()) return false;
  Entry e{next_seq_, std::move(frame)};
  if (spilled_ == 0 && memory_.size() < options_.memory_points) {
    memory_.push_back(std::move(e));
  } else if (!Spill(e)) {
    return false;
  }
  ++next_seq_;
  return true;
}

bool MetricsSpool::Spill(const Entry& e) {
  if (fd_ < 0) {
    fd_ = ::open(options_.spill_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      spill_status_ = Errno("open", options_.spill_path);
      return false;
    }
  }
  char header[kHeaderBytes];
  const uint64_t seq = static_cast<uint64_t>(e.seq);
  const uint32_t len = static_cast<uint32_t>(e.frame.size());
  std::memcpy(header, &seq, 8);
  std::memcpy(header + 8, &len, 4);
  if (!WriteAll(fd_, header, kHeaderBytes, write_off_) ||
      !WriteAll(fd_, e.frame.data(), e.frame.size(), write_off_ + kHeaderBytes)) {
    spill_status_ = Errno("write", options_.spill_path);
    return false;  // write_off_ unchanged: a partial record is overwritten next time
  }
  write_off_ += kHeaderBytes + e.frame.size();
  ++spilled_;
  return true;
}

void MetricsSpool::Refill() {
  while (spilled_ > 0 && memory_.size() < options_.memory_points) {
    char header[kHeaderBytes];
    uint64_t seq = 0;
    uint32_t len = 0;
    Entry e{0, {}};
    if (!ReadAll(fd_, header, kHeaderBytes, read_off_)) break;
    std::memcpy(&seq, header, 8);
    std::memcpy(&len, header + 8, 4);
    e.seq = static_cast<int64_t>(seq);
    e.frame.resize(len);
    if (!ReadAll(fd_, e.frame.data(), len, read_off_ + kHeaderBytes)) break;
    read_off_ += kHeaderBytes + len;
    --spilled_;
    if (e.seq > acked_) memory_.push_back(std::move(e));
  }
  if (spilled_ == 0 && fd_ >= 0 && write_off_ > 0) {
    // Drained: start the file over so it does not grow for the whole run.
    if (::ftruncate(fd_, 0) != 0) spill_status_ = Errno("truncate", options_.spill_path);
    read_off_ = write_off_ = 0;
  }
}

bool MetricsSpool::Ack(int64_t seq) {
  if (seq <= acked_) return false;
  acked_ = seq;
  bool removed = false;
  while (!memory_.empty() && memory_.front().seq <= seq) {
    memory_.pop_front();
    if (cursor_ > 0) --cursor_;
    removed = true;
  }
  Refill();
  return removed;
}

const std::string* MetricsSpool::NextToSend() const {
  return cursor_ < memory_.size() ? &memory_[cursor_].frame : nullptr;
}

int64_t MetricsSpool::NextToSendSeq() const { return cursor_ < memory_.size() ? memory_[cursor_].seq : 0; }

void MetricsSpool::MarkSent() {
  if (cursor_ < memory_.size()) ++cursor_;
}

void MetricsSpool::Rewind() { cursor_ = 0; }

}  // namespace gantry::worker
