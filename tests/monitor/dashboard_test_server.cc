// A stand-in monitor for the dashboard page: the monitor/http server with the
// embedded page (AddDashboardFiles) and fake handlers for the REST + SSE API
// of docs/monitor.md ("Dashboard"), answering canned data: two jobs with
// loss/accuracy/throughput series and per-rank step times, alerts and a drift
// result. It does not need gantry-monitor; the Chromium test and the
// screenshot command in docs/monitor.md run it.
//
//   dashboard_test_server [--port N] [--token T]
// prints the bound port on one line of stdout, then serves until SIGINT or
// SIGTERM. Test hooks (bearer token, default "dashboard-test-token"):
//   POST /test/push   publishes a `point` event for job-a (the next step,
//                     rank 0, plus step times of ranks 1-3) and answers it;
//                     a JSON body {"job_id","step"} overrides the defaults.
//   POST /test/event  publishes body {"event": name, "data": {...}} as is.
#include <signal.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/http/server.h"
#include "common/http/sse.h"
#include "common/http/static_files.h"
#include "monitor/web/dashboard_files.h"

namespace {

using gantry::http::HttpRequest;
using gantry::http::HttpResponse;
using nlohmann::json;

constexpr int kRanks = 4;
// Canned history starts 20 minutes before the server does.
const double kStart = static_cast<double>(std::time(nullptr)) - 1200;

struct FakeJob {
  std::string id, name, state;
  int attempt = 1;
  int total_steps = 0;
  double lr_scale = 1.0;                       // makes the two curves differ
  std::map<std::string, json> series;          // metric -> [[step, time, value], ...]
  std::map<int, json> ranks;                   // rank -> [[step, time, seconds], ...]
  int last_step = 0;
  double last_time = kStart;
};

// Deterministic noise in [-1, 1).
double Noise(uint64_t& s) {
  s = s * 6364136223846793005ULL + 1442695040888963407ULL;
  return static_cast<double>(s >> 11) / static_cast<double>(1ULL << 52) - 1.0;
}

class FakeMonitor {
 public:
  FakeMonitor() {
    jobs_.push_back(MakeJob("job-a", "fashion-mnist lr=0.1", "running", 2, 1000, 1.0, 300, 1));
    jobs_.push_back(MakeJob("job-b", "fashion-mnist lr=0.03", "succeeded", 1, 600, 0.55, 600, 2));
    events_ = std::make_shared<gantry::http::SseBroadcaster>();
  }

  std::shared_ptr<gantry::http::SseBroadcaster> events() { return events_; }

  HttpResponse Jobs() {
    std::lock_guard lock(mu_);
    json out = json::array();
    for (const FakeJob& j : jobs_) {
      out.push_back({{"job_id", j.id}, {"name", j.name}, {"state", j.state}, {"attempt", j.attempt},
                     {"step", j.last_step}, {"total_steps", j.total_steps}, {"updated", j.last_time}});
    }
    return HttpResponse::Json(200, json{{"jobs", out}}.dump());
  }

  HttpResponse Metrics(const HttpRequest& r) {
    std::lock_guard lock(mu_);
    const FakeJob* job = Find(r.params.at("id"));
    if (job == nullptr) return HttpResponse::Json(404, json{{"error", "unknown job " + r.params.at("id")}}.dump());
    const double after = std::atof(r.Query("after").value_or("-1").c_str());
    const size_t max_points = std::max(2, std::atoi(r.Query("max_points").value_or("2000").c_str()));
    auto cut = [&](const json& pts) {
      json kept = json::array();
      for (const json& p : pts) if (p[0].get<double>() > after) kept.push_back(p);
      if (kept.size() <= max_points) return kept;
      json thin = json::array();  // evenly spaced, the last point kept
      for (size_t i = 0; i < max_points; ++i) thin.push_back(kept[i * (kept.size() - 1) / (max_points - 1)]);
      return thin;
    };
    json series = json::object(), ranks = json::object();
    for (const auto& [name, pts] : job->series) series[name] = cut(pts);
    for (const auto& [rank, pts] : job->ranks) ranks[std::to_string(rank)] = cut(pts);
    return HttpResponse::Json(200, json{{"job_id", job->id}, {"series", series}, {"rank_step_seconds", ranks}}.dump());
  }

  static HttpResponse Alerts() {
    json alerts = json::array({
        {{"rule", "straggler"}, {"job_id", "job-a"}, {"rank", 3}, {"state", "firing"}, {"since", kStart + 800},
         {"why", "rank 3 step_time 0.41 s > 1.5 x median 0.25 s"}, {"severity", "warning"}},
        {{"rule", "loss_nan"}, {"job_id", "job-b"}, {"rank", 0}, {"state", "resolved"}, {"since", kStart + 200},
         {"why", "loss was NaN at step 120"}, {"severity", "critical"}},
    });
    return HttpResponse::Json(200, json{{"alerts", alerts}}.dump());
  }

  static HttpResponse Drift() {
    json results = json::array({
        {{"dataset", "incoming/shard-0007"}, {"time", kStart + 900}, {"share", 0.746}, {"drifted", true},
         {"features", {{{"feature", "pixel_406"}, {"statistic", 0.41}, {"p_value", 0.0}},
                       {{"feature", "pixel_378"}, {"statistic", 0.39}, {"p_value", 0.0}},
                       {{"feature", "pixel_434"}, {"statistic", 0.37}, {"p_value", 1e-300}}}}},
        {{"dataset", "incoming/shard-0006"}, {"time", kStart + 400}, {"share", 0.0}, {"drifted", false},
         {"features", json::array()}},
    });
    return HttpResponse::Json(200, json{{"results", results}}.dump());
  }

  static HttpResponse Deployments() {
    json d = {{"deployment", "fashion-prod"}, {"model", "fashion"}, {"version", "3"}, {"requests", 18400},
              {"errors", 12}, {"errors_by_code", {{"400", 11}, {"503", 1}}}, {"request_rate", 212.5},
              {"latency_p50_seconds", 0.0008}, {"latency_p99_seconds", 0.0064}, {"batch_size_mean", 9.5},
              {"accuracy", 0.874}, {"feedback_window", 1000},
              {"drift", {{"file", "v3 window 4"}, {"share", 0.012}, {"drifted", false},
                         {"drifted_features", 9}, {"tested", 784}}}};
    return HttpResponse::Json(200, json{{"deployments", json::array({d})}}.dump());
  }

  // Appends one step to a job and publishes it as SSE `point` events.
  HttpResponse Push(const HttpRequest& r) {
    json body = r.body.empty() ? json::object() : json::parse(r.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return HttpResponse::Json(400, R"({"error":"bad JSON"})");
    std::vector<json> points;
    {
      std::lock_guard lock(mu_);
      FakeJob* job = Find(body.value("job_id", "job-a"));
      if (job == nullptr) return HttpResponse::Json(404, R"({"error":"unknown job"})");
      const int step = body.value("step", job->last_step + 10);
      const double time = job->last_time + 4.0;
      for (int rank = 0; rank < kRanks; ++rank) {
        json values = AddStep(*job, step, time, rank);
        points.push_back({{"job_id", job->id}, {"rank", rank}, {"attempt", job->attempt}, {"step", step},
                          {"time", time}, {"values", values}});
      }
    }
    for (const json& p : points) events_->Publish("point", p.dump());
    return HttpResponse::Json(200, points.front().dump());
  }

  HttpResponse Event(const HttpRequest& r) {
    json body = json::parse(r.body, nullptr, false);
    if (!body.is_object() || !body.contains("event") || !body["event"].is_string())
      return HttpResponse::Json(400, R"({"error":"want {\"event\": name, \"data\": {...}}"})");
    events_->Publish(body["event"].get<std::string>(), body.value("data", json::object()).dump());
    return HttpResponse::Json(200, "{}");
  }

 private:
  FakeJob* Find(const std::string& id) {
    for (FakeJob& j : jobs_) if (j.id == id) return &j;
    return nullptr;
  }

  // The values of one step for one rank; also stored in the job's history.
  json AddStep(FakeJob& j, int step, double time, int rank) {
    const double x = step / 100.0;
    const double step_time = (rank == 3 ? 0.41 : 0.25) + 0.02 * Noise(seed_);
    json v = {{"step_time", step_time}};
    if (rank == 0) {
      const double loss = 0.28 + 2.0 * std::exp(-0.9 * x * j.lr_scale) + 0.08 * Noise(seed_);
      v["loss"] = loss;
      v["accuracy"] = std::min(0.99, 0.93 - 0.8 * std::exp(-1.1 * x * j.lr_scale) + 0.025 * Noise(seed_));
      // The worker's name; the page reads it as samples_per_second.
      v["samples_per_sec"] = 5200 + 350 * Noise(seed_) - (step > 500 && step < 560 ? 1800 : 0);
      j.series["loss"].push_back({step, time, v["loss"]});
      j.series["accuracy"].push_back({step, time, v["accuracy"]});
      j.series["samples_per_second"].push_back({step, time, v["samples_per_sec"]});
      if (step % 100 == 0) {
        const double test_acc = 0.9 - 0.8 * std::exp(-1.0 * x * j.lr_scale);
        j.series["test_accuracy"].push_back({step, time, test_acc});
        j.series["test_loss"].push_back({step, time, 0.33 + 2.0 * std::exp(-0.8 * x * j.lr_scale)});
      }
      j.last_step = step;
      j.last_time = time;
    }
    j.ranks[rank].push_back({step, time, step_time});
    return v;
  }

  FakeJob MakeJob(std::string id, std::string name, std::string state, int attempt, int total, double lr_scale,
                  int steps, uint64_t seed) {
    FakeJob j;
    j.id = std::move(id);
    j.name = std::move(name);
    j.state = std::move(state);
    j.attempt = attempt;
    j.total_steps = total;
    j.lr_scale = lr_scale;
    seed_ = seed;
    for (int step = 10; step <= steps; step += 10) {
      for (int rank = 0; rank < kRanks; ++rank) AddStep(j, step, kStart + step * (seed == 1 ? 4.0 : 1.5), rank);
    }
    return j;
  }

  std::mutex mu_;  // guards jobs_ and seed_
  std::vector<FakeJob> jobs_;
  uint64_t seed_ = 1;
  std::shared_ptr<gantry::http::SseBroadcaster> events_;
};

}  // namespace

int main(int argc, char** argv) {
  gantry::http::HttpServerOptions options;
  options.port = 0;
  options.threads = 2;
  options.token = "dashboard-test-token";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--port") options.port = static_cast<uint16_t>(std::atoi(argv[i + 1]));
    else if (flag == "--token") options.token = argv[i + 1];
    else { std::cerr << "usage: dashboard_test_server [--port N] [--token T]\n"; return 2; }
  }
  // Block the stop signals before any thread starts; main waits for them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  FakeMonitor fake;
  auto router = std::make_shared<gantry::http::Router>();
  auto check = [](const gantry::Status& s) {
    if (!s.ok()) { std::cerr << "dashboard_test_server: " << s.ToString() << "\n"; std::exit(1); }
  };
  check(router->Add("GET", "/api/jobs", [&](const HttpRequest&) { return fake.Jobs(); }));
  check(router->Add("GET", "/api/jobs/{id}/metrics", [&](const HttpRequest& r) { return fake.Metrics(r); }));
  check(router->Add("GET", "/api/alerts", [](const HttpRequest&) { return FakeMonitor::Alerts(); }));
  check(router->Add("GET", "/api/drift", [](const HttpRequest&) { return FakeMonitor::Drift(); }));
  check(router->Add("GET", "/api/deployments", [](const HttpRequest&) { return FakeMonitor::Deployments(); }));
  check(router->Add("GET", "/events", [&](const HttpRequest&) { return HttpResponse::EventStream(fake.events()); }));
  check(router->Add("POST", "/test/push", [&](const HttpRequest& r) { return fake.Push(r); }));
  check(router->Add("POST", "/test/event", [&](const HttpRequest& r) { return fake.Event(r); }));
  gantry::http::StaticFiles files;
  check(gantry::monitor::AddDashboardFiles(files));
  check(files.Install(*router));

  gantry::http::HttpServer server(options, router);
  check(server.Start());
  std::cout << server.port() << std::endl;
  int sig = 0;
  sigwait(&stop, &sig);
  server.Stop();
  return 0;
}
