#include "serving/monitor_reporter.h"

#include <cmath>
#include <limits>
#include <random>
#include <zmq.hpp>

#include "common/curve.h"

namespace gantry::serving {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t Threshold(double rate) {
  if (rate <= 0) return 0;
  if (rate >= 1) return std::numeric_limits<uint64_t>::max();
  return static_cast<uint64_t>(std::ldexp(rate, 64));
}

ServingHistogram ToWire(const HistogramSnapshot& h) { return {h.bounds, h.counts, h.count, h.sum}; }

class ZmqFrameSender final : public FrameSender {
 public:
  ZmqFrameSender(zmq::context_t& ctx, const std::string& endpoint) : socket_(ctx, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::immediate, 1);
    socket_.set(zmq::sockopt::sndhwm, 64);
    socket_.set(zmq::sockopt::linger, 0);
    MakeCurveClient(socket_);
    socket_.connect(endpoint);
  }
  bool TrySend(const std::string& frame) override {
    try {
      // The monitor may answer with ingest_ack frames (sequenced metrics
      // only, never ours); read and discard anything that arrives.
      zmq::message_t in;
      while (socket_.recv(in, zmq::recv_flags::dontwait)) {
      }
      return socket_.send(zmq::buffer(frame), zmq::send_flags::dontwait).has_value();
    } catch (const zmq::error_t&) {
      return false;
    }
  }

 private:
  zmq::socket_t socket_;
};

}  // namespace

std::unique_ptr<FrameSender> MakeZmqFrameSender(zmq::context_t& ctx, const std::string& endpoint) {
  return std::make_unique<ZmqFrameSender>(ctx, endpoint);
}

Result<std::unique_ptr<MonitorReporter>> MonitorReporter::Create(ReporterOptions options,
                                                                 std::vector<ReportedModel> models,
                                                                 std::unique_ptr<FrameSender> sender) {
  if (!(options.sample_rate >= 0 && options.sample_rate <= 1)) {
    return Status::InvalidArgument("--sample-rate must be in [0, 1] (got " + std::to_string(options.sample_rate) +
                                   "); 0.1 sends one request in ten to the monitor");
  }
  if (options.deployment.empty()) return Status::InvalidArgument("monitor reporter: the deployment name is empty");
  if (options.interval.count() <= 0) return Status::InvalidArgument("monitor reporter: interval must be > 0");
  if (options.max_pending_rows == 0 || options.max_rows_per_message == 0 || options.max_queued_frames == 0) {
    return Status::InvalidArgument("monitor reporter: queue bounds must be >= 1");
  }
  if (!sender) return Status::InvalidArgument("monitor reporter: no sender");
  return std::unique_ptr<MonitorReporter>(new MonitorReporter(std::move(options), std::move(models), std::move(sender)));
}

MonitorReporter::MonitorReporter(ReporterOptions options, std::vector<ReportedModel> models,
                                 std::unique_ptr<FrameSender> sender)
    : options_(std::move(options)),
      models_(std::move(models)),
      sender_(std::move(sender)),
      clock_(options_.clock ? options_.clock : &system_clock_),
      threshold_(Threshold(options_.sample_rate)),
      counter_(options_.seed != 0 ? options_.seed : std::random_device{}()) {}

MonitorReporter::~MonitorReporter() { Stop(); }

bool MonitorReporter::ShouldSample() {
  if (threshold_ == 0) return false;
  if (threshold_ == std::numeric_limits<uint64_t>::max()) return true;
  return SplitMix64(counter_.fetch_add(1, std::memory_order_relaxed)) < threshold_;
}

void MonitorReporter::AddSample(const std::string& model, const std::string& version, std::span<const float> rows,
                                size_t row_size, std::span<const int64_t> predictions) {
  const size_t n = predictions.size();
  if (n == 0 || row_size == 0 || rows.size() != n * row_size) return;
  std::lock_guard<std::mutex> l(mu_);
  if (pending_rows_ + n > options_.max_pending_rows) {
    stats_.samples_dropped += n;
    return;
  }
  Pending& p = pending_[{model, version}];
  if (p.row_size != 0 && p.row_size != row_size) {
    stats_.samples_dropped += n;  // one version has one row size
    return;
  }
  p.row_size = row_size;
  p.inputs.insert(p.inputs.end(), rows.begin(), rows.end());
  p.predictions.insert(p.predictions.end(), predictions.begin(), predictions.end());
  pending_rows_ += n;
}

void MonitorReporter::EnqueueLocked(std::string frame, uint64_t sample_rows) {
  if (queue_.size() >= options_.max_queued_frames) {
    if (sample_rows > 0) {
      stats_.samples_dropped += sample_rows;
    } else {
      ++stats_.reports_dropped;
    }
    return;
  }
  queue_.push_back({std::move(frame), sample_rows});
}

ServingMetricsMessage MonitorReporter::ReportOf(const ReportedModel& m, double now) {
  const ServingSnapshot s = m.snapshot();
  ServingMetricsMessage r;
  r.deployment = options_.deployment;
  r.model = m.name;
  r.version = m.version();
  r.time = now;
  r.seq = ++seq_;
  r.requests = s.requests;
  r.succeeded = s.succeeded;
  for (const auto& [code, n] : s.errors_by_status) r.errors_by_code[code] = n;
  r.errors_by_kind = s.errors_by_kind;
  r.latency_seconds = ToWire(s.latency_seconds);
  r.batch_size = ToWire(s.batch_size);
  r.non_finite = s.input_quality.non_finite;
  r.wrong_shape = s.input_quality.wrong_shape;
  r.wrong_datatype = s.input_quality.wrong_datatype;
  r.out_of_range_requests = s.input_quality.out_of_range_requests;
  r.out_of_range_values = s.input_quality.out_of_range_values;
  r.accuracy = s.feedback.accuracy;
  r.window_outcomes = s.feedback.window_outcomes;
  r.labels_matched = s.feedback.labels_matched;
  for (const auto& [cls, c] : s.feedback.per_class) r.per_class.push_back({cls, c.precision, c.recall, c.support});
  std::lock_guard<std::mutex> l(mu_);
  r.samples_sent = stats_.samples_sent;
  r.samples_dropped = stats_.samples_dropped;
  r.reports_dropped = stats_.reports_dropped;
  return r;
}

// REQUIRES: mu_ held.
void MonitorReporter::DrainLocked() {
  // Offer the queue, oldest first, until the sender refuses one.
  while (!queue_.empty()) {
    if (!sender_->TrySend(queue_.front().frame)) break;
    if (queue_.front().sample_rows > 0) {
      stats_.samples_sent += queue_.front().sample_rows;
    } else {
      ++stats_.reports_sent;
    }
    queue_.pop_front();
  }
  stats_.frames_queued = queue_.size();
}

void MonitorReporter::Tick() {
  {
    // What waited since the last tick goes first (and makes room).
    std::lock_guard<std::mutex> l(mu_);
    DrainLocked();
  }
  const auto now = clock_->Now();
  const double wall = clock_->WallSeconds();
  if (!reported_ || now >= next_report_) {
    reported_ = true;
    next_report_ = now + options_.interval;
    for (const ReportedModel& m : models_) {
      std::string frame = EncodeServingMetricsMessage(ReportOf(m, wall));
      std::lock_guard<std::mutex> l(mu_);
      EnqueueLocked(std::move(frame), 0);
    }
  }
  // Pending samples -> frames (encoded outside the lock).
  std::map<std::pair<std::string, std::string>, Pending> pending;
  {
    std::lock_guard<std::mutex> l(mu_);
    pending.swap(pending_);
    pending_rows_ = 0;
  }
  std::vector<std::pair<std::string, uint64_t>> frames;
  for (auto& [key, p] : pending) {
    const size_t rows = p.predictions.size();
    for (size_t first = 0; first < rows; first += options_.max_rows_per_message) {
      const size_t n = std::min(options_.max_rows_per_message, rows - first);
      ServingSamplesMessage s;
      s.deployment = options_.deployment;
      s.model = key.first;
      s.version = key.second;
      s.time = wall;
      s.row_size = static_cast<int64_t>(p.row_size);
      s.inputs.assign(p.inputs.begin() + static_cast<std::ptrdiff_t>(first * p.row_size),
                      p.inputs.begin() + static_cast<std::ptrdiff_t>((first + n) * p.row_size));
      s.predictions.assign(p.predictions.begin() + static_cast<std::ptrdiff_t>(first),
                           p.predictions.begin() + static_cast<std::ptrdiff_t>(first + n));
      frames.emplace_back(EncodeServingSamplesMessage(s), n);
    }
  }
  std::lock_guard<std::mutex> l(mu_);
  for (auto& [frame, n] : frames) EnqueueLocked(std::move(frame), n);
  DrainLocked();
}

void MonitorReporter::Start() {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> l(run_mu_);
    while (!stop_) {
      l.unlock();
      Tick();
      l.lock();
      run_cv_.wait_for(l, options_.interval, [this] { return stop_; });
    }
  });
}

void MonitorReporter::Stop() {
  {
    std::lock_guard<std::mutex> l(run_mu_);
    if (stop_) return;
    stop_ = true;
  }
  run_cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
    Tick();  // what the last interval gathered (best effort: never blocks)
  }
}

ReporterStats MonitorReporter::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

}  // namespace gantry::serving
