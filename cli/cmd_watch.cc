// gantry watch ID: follows a job live.
//
// 1. Subscribe to the monitor's feed (topic job/<id>) first, so nothing
//    published from now on is missed.
// 2. Fetch the recorded history from the monitor and print it.
// 3. Render every new point from the feed: a progress bar on a terminal,
//    one plain line per point otherwise (or NDJSON with --json).
// 4. Stop at a terminal job_state event, or when the coordinator (asked
//    every 2 s in case an event was lost) says the job has finished; exit
//    with the job's outcome (0 succeeded, 1 failed, 3 cancelled).
// A service that dies meanwhile does not end the watch: it says so on
// stderr ("reconnecting") and carries on once the service is back. A
// restarted monitor (a new pid in its run file) is re-subscribed and its
// history read again, so points published while it was down are shown.
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <iostream>

#include "cli/commands.h"
#include "common/curve.h"

namespace gantry::cli {
namespace {

class Renderer {
 public:
  Renderer(std::string id, bool tty, bool as_json) : id_(std::move(id)), tty_(tty), json_(as_json) {}

  void Point(const json& p) {
    if (json_) {
      std::cout << json{{"type", "metrics"}, {"body", p}}.dump() << std::endl;
      return;
    }
    // Every rank reports its own step time (to show stragglers); the
    // progress line follows rank 0, the one that reports loss and accuracy.
    if (p.value("rank", int64_t{0}) != 0) return;
    const json& v = p.value("values", json::object());
    int64_t step = p.value("step", int64_t{0});
    if (p.contains("total_steps")) total_ = p["total_steps"];
    // The recorded history merges a step's training and evaluation values
    // into one point; live they come apart. Show both parts, step first.
    const bool eval = v.contains("test_accuracy") || v.contains("test_loss");
    if (!eval || v.contains("loss") || v.contains("step_time")) Progress(p, v, step);
    if (eval) {
      Clear();
      std::printf("eval at step %lld: test loss %.4f, test accuracy %.2f%%\n", static_cast<long long>(step),
                  Num(v, "test_loss"), 100 * Num(v, "test_accuracy"));
      last_eval_ = Num(v, "test_accuracy");
      Redraw();
    }
  }

  void Progress(const json& p, const json& v, int64_t step) {
    double t = p.value("time", 0.0);
    if (first_time_ == 0) first_time_ = t, first_step_ = step;
    step_ = step;
    epoch_ = p.value("epoch", int64_t{0});
    // A point may carry only some values: keep the last known of the rest.
    if (v.contains("loss")) loss_ = Num(v, "loss");
    if (v.contains("accuracy")) acc_ = Num(v, "accuracy");
    if (v.contains("samples_per_sec")) sps_ = Num(v, "samples_per_sec");
    double rate = (t > first_time_ && step > first_step_) ? (step - first_step_) / (t - first_time_) : 0;
    if (rate <= 0 && Num(v, "step_time") > 0) rate = 1.0 / Num(v, "step_time");
    eta_ = (rate > 0 && total_ > 0) ? (total_ - step) / rate : -1;
    if (tty_) {
      Redraw();
    } else {
      std::printf("step %lld/%lld epoch %lld loss %.4f accuracy %.4f samples/s %.0f eta %s\n",
                  static_cast<long long>(step), static_cast<long long>(total_), static_cast<long long>(epoch_),
                  loss_, acc_, sps_, FormatDuration(eta_).c_str());
      std::fflush(stdout);
    }
  }

  void State(const json& body) {
    std::string state = body.value("state", "");
    if (state == last_state_) return;
    last_state_ = state;
    if (json_) {
      std::cout << json{{"type", "job_state"}, {"body", body}}.dump() << std::endl;
      return;
    }
    Clear();
    std::printf("%s %s: %s\n", id_.c_str(), state.c_str(), body.value("reason", "").c_str());
    Redraw();
  }

  // A line on stderr that keeps the progress bar intact.
  void Note(const std::string& text) {
    Clear();
    std::fflush(stdout);
    std::fprintf(stderr, "gantry: %s\n", text.c_str());
    Redraw();
  }

  void Finish() {
    if (tty_ && drawn_) std::printf("\n");
    std::fflush(stdout);
  }
  double last_eval() const { return last_eval_; }

 private:
  static double Num(const json& v, const char* k) {
    auto it = v.find(k);
    return (it != v.end() && it->is_number()) ? it->get<double>() : NAN;
  }
  void Clear() {
    if (tty_ && drawn_) std::printf("\r\033[K");
  }
  void Redraw() {
    if (!tty_ || step_ < 0) return;
    constexpr int kWidth = 24;
    double frac = total_ > 0 ? std::min(1.0, double(step_) / double(total_)) : 0;
    int full = static_cast<int>(frac * kWidth);
    std::string bar;
    for (int i = 0; i < kWidth; ++i) bar += i < full ? "#" : "-";
    std::printf("\r\033[K[%s] %lld/%lld %3.0f%%  epoch %lld  loss %.4f  acc %.1f%%  %.0f samples/s  ETA %s",
                bar.c_str(), static_cast<long long>(step_), static_cast<long long>(total_), 100 * frac,
                static_cast<long long>(epoch_), loss_, 100 * acc_, sps_, FormatDuration(eta_).c_str());
    std::fflush(stdout);
    drawn_ = true;
  }

  std::string id_;
  bool tty_, json_;
  bool drawn_ = false;
  std::string last_state_;
  int64_t step_ = -1, epoch_ = 0, total_ = 0, first_step_ = 0;
  double first_time_ = 0, loss_ = NAN, acc_ = NAN, sps_ = NAN, eta_ = -1, last_eval_ = NAN;
};

int Watch(Context& ctx, const std::string& id, bool as_json) {
  auto job = ctx.Call(kCoordinator, "get_job", {{"job_id", id}});
  if (!job.ok()) return Fail(job.status());
  Renderer out(id, ::isatty(STDOUT_FILENO) && !as_json, as_json);

  std::unique_ptr<zmq::socket_t> sub;
  std::string feed_endpoint;
  auto subscribe = [&](const std::string& feed) {
    sub = std::make_unique<zmq::socket_t>(ctx.zmq(), zmq::socket_type::sub);
    sub->set(zmq::sockopt::linger, 0);
    sub->set(zmq::sockopt::subscribe, "job/" + id);
    MakeCurveClient(*sub);  // Context::Call above chose the keys (cli/context.h)
    sub->connect(feed);
    feed_endpoint = feed;
  };
  // The monitor process we follow: 0 while none runs.
  auto monitor_pid = [&]() -> pid_t {
    auto info = ctx.dir().ReadServiceInfo(kMonitor);
    if (!info.ok() || info->pid <= 0 || ::kill(info->pid, 0) != 0) return 0;
    if (auto it = info->endpoints.find("feed"); it != info->endpoints.end() && it->second != feed_endpoint) {
      subscribe(it->second);
    }
    return info->pid;
  };
  pid_t monitor = monitor_pid();
  bool monitor_down = false, coordinator_down = false;
  // Points reach us from the recorded history, the live feed and a last
  // catch-up; each is shown once, tracked per rank and kind.
  std::map<std::pair<int64_t, bool>, int64_t> shown;  // (rank, eval) -> last step shown
  auto show = [&](const json& p) {
    const json& v = p.value("values", json::object());
    const bool eval = v.contains("test_accuracy") || v.contains("test_loss");
    const int64_t step = p.value("step", int64_t{0});
    auto [it, fresh] = shown.try_emplace({p.value("rank", int64_t{0}), eval}, step);
    if (!fresh && step <= it->second) return;
    it->second = step;
    out.Point(p);
  };
  // The feed's subscription takes effect a moment after connect (ZeroMQ's
  // slow joiner), so points published meanwhile come only from the history.
  auto catch_up = [&](bool warn) {
    auto history = ctx.Call(kMonitor, "get_metrics", {{"job_id", id}}, std::chrono::seconds(5));
    if (history.ok()) {
      for (const auto& p : (*history)["points"]) show(p);
    } else if (warn && history.status().code() != StatusCode::kNotFound) {
      // not_found: the monitor has seen nothing of the job yet (it was just
      // submitted); the feed brings its points.
      std::fprintf(stderr, "gantry: no metrics history (%s)\n", history.status().message().c_str());
    }
  };
  catch_up(true);
  out.State((*job)["job"]);
  std::string state = (*job)["job"]["state"];
  auto next_check = std::chrono::steady_clock::now();
  while (!IsTerminalState(state)) {
    if (sub) {
      zmq::pollitem_t item{sub->handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(250));
      while (item.revents & ZMQ_POLLIN) {
        std::vector<zmq::message_t> frames;
        zmq::message_t m;
        bool more = true;
        while (more && sub->recv(m, zmq::recv_flags::dontwait)) {
          more = m.more();
          frames.push_back(std::move(m));
        }
        if (frames.empty()) break;
        auto msg = ParseMsgpack(frames.back().to_string_view());
        if (!msg.ok() || !msg->is_object()) continue;
        std::string type = msg->value("type", "");
        const json& body = (*msg)["body"];
        if (type == "metrics") {
          show(body);
        } else if (type == "job_state") {
          // What the feed missed before the job ended comes first.
          if (IsTerminalState(body.value("state", state))) catch_up(false);
          out.State(body);
          state = body.value("state", state);
        }
      }
    } else {
      zmq::poll(static_cast<zmq::pollitem_t*>(nullptr), 0, std::chrono::milliseconds(250));
    }
    if (std::chrono::steady_clock::now() >= next_check && !IsTerminalState(state)) {
      next_check = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      // A monitor that died is followed again once it is back.
      const pid_t now_monitor = monitor_pid();
      if (now_monitor == 0 && !monitor_down) {
        monitor_down = true;
        out.Note("monitor is not running; reconnecting when it is back");
      } else if (now_monitor != 0 && now_monitor != monitor) {
        out.Note("monitor " + std::string(monitor_down || monitor != 0 ? "restarted" : "started") +
                 " (pid " + std::to_string(now_monitor) + "); reconnected, carrying on");
        monitor_down = false;
        monitor = now_monitor;
        catch_up(false);  // what its feed carried while we were not listening
      }
      auto j = ctx.Call(kCoordinator, "get_job", {{"job_id", id}}, std::chrono::seconds(5));
      if (!j.ok() && (j.status().code() == StatusCode::kUnavailable ||
                      j.status().code() == StatusCode::kDeadlineExceeded)) {
        if (!coordinator_down) out.Note("coordinator unavailable (" + j.status().message() + "); reconnecting");
        coordinator_down = true;
        continue;
      }
      if (!j.ok()) {
        out.Finish();
        return Fail(j.status());
      }
      if (coordinator_down) out.Note("coordinator is back, carrying on");
      coordinator_down = false;
      if (IsTerminalState((*j)["job"]["state"].get<std::string>())) catch_up(false);
      out.State((*j)["job"]);
      state = (*j)["job"]["state"];
    }
  }
  out.Finish();
  return ExitCodeForState(state);
}

}  // namespace

void AddWatchCommand(CLI::App& app, Context& ctx, Action& action) {
  struct Opts {
    std::string id;
    bool as_json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* watch = app.add_subcommand("watch", "Follow a job live until it ends (exit 0 succeeded, 1 failed, 3 cancelled)");
  watch->add_option("id", o->id, "Job id")->required();
  watch->add_flag("--json", o->as_json, "One JSON object per line");
  watch->callback([&ctx, &action, o] { action = [&ctx, o] { return Watch(ctx, o->id, o->as_json); }; });
}

}  // namespace gantry::cli
