// bench_schedule: how fast the coordinator takes jobs, against a running
// cluster (bench/schedule.sh starts one with `gantry up --port-base 0`).
//
//   bench_schedule ENDPOINT SPEC.yaml [jobs=200] [clients=4] [latency_rounds=10]
//
// 1. Throughput: `jobs` submit_job requests of SPEC (a no-op job: one step
//    on a tiny CSV), first from one client back to back, then from `clients`
//    clients at once; submissions per second = jobs / wall time. The jobs
//    beyond the free slots queue; all are cancelled afterwards.
// 2. Latency: `latency_rounds` times on an idle cluster, submit one job and
//    poll get_job until it is RUNNING (the coordinator launches it inside
//    submit_job when slots are free, so the reply often says RUNNING
//    already), then wait until it ends. Client-side seconds, plus the
//    coordinator's own submitted_at -> started_at.
// Prints one JSON line per figure against Slurm's documented 500 jobs/s
// (a reference value, not measured here).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include "common/config.h"
#include "common/job_spec.h"
#include "common/rpc.h"

namespace {

using namespace gantry;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

json Spread(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const double median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return {{"min", v.front()}, {"median", median}, {"max", v.back()}};
}

double Median(std::vector<double> v) { return Spread(std::move(v))["median"].get<double>(); }

void Emit(const std::string& metric, double value, const std::string& unit, size_t n, const json& gantry,
          const json& baseline, const std::string& note) {
  json j = {{"bench", "schedule"}, {"metric", metric}, {"value", value}, {"unit", unit}, {"n", n},
            {"gantry", gantry},    {"baseline", baseline}, {"note", note}};
  std::cout << j.dump() << std::endl;
}

bool Terminal(const std::string& s) { return s == "SUCCEEDED" || s == "FAILED" || s == "CANCELLED"; }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_schedule ENDPOINT SPEC.yaml [jobs=200] [clients=4] [latency_rounds=10]\n");
    return 2;
  }
  const std::string endpoint = argv[1];
  const int jobs = argc > 3 ? std::atoi(argv[3]) : 200;
  const int clients = argc > 4 ? std::atoi(argv[4]) : 4;
  const int rounds = argc > 5 ? std::atoi(argv[5]) : 10;
  auto doc = LoadYamlFile(argv[2]);
  if (!doc.ok()) return std::fprintf(stderr, "%s\n", doc.status().ToString().c_str()), 2;
  auto spec = JobSpec::Parse(*doc, std::filesystem::absolute(argv[2]).parent_path().string());
  if (!spec.ok()) return std::fprintf(stderr, "%s\n", spec.status().ToString().c_str()), 2;
  const json body = {{"spec", spec->ToJson()}};
  zmq::context_t ctx(1);
  RpcClient admin(ctx, endpoint, std::chrono::seconds(30));
  std::vector<std::string> ids;
  std::mutex ids_mu;
  std::atomic<int> failures{0};

  // Submits `n` jobs on its own connection.
  auto submit_many = [&](int n) {
    RpcClient c(ctx, endpoint, std::chrono::seconds(30));
    std::vector<std::string> mine;
    for (int i = 0; i < n; ++i) {
      auto r = c.Call("submit_job", body);
      if (!r.ok()) {
        ++failures;
        std::fprintf(stderr, "bench_schedule: submit_job: %s\n", r.status().ToString().c_str());
        continue;
      }
      mine.push_back((*r)["job_id"].get<std::string>());
    }
    std::lock_guard<std::mutex> lock(ids_mu);
    ids.insert(ids.end(), mine.begin(), mine.end());
  };
  auto cancel_all = [&] {
    for (const auto& id : ids) (void)admin.Call("cancel_job", {{"job_id", id}});
    ids.clear();
    // Wait until nothing runs, so that the next measurement starts idle.
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline) {
      auto cs = admin.Call("cluster_status");
      if (cs.ok() && (*cs)["jobs_running"].get<int>() == 0 && (*cs)["jobs_queued"].get<int>() == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  };

  // 1. Throughput: one client, then `clients` at once.
  auto t0 = Clock::now();
  submit_many(jobs);
  const double one_client = jobs / Since(t0);
  cancel_all();
  t0 = Clock::now();
  {
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) threads.emplace_back(submit_many, jobs / clients);
    for (auto& t : threads) t.join();
  }
  const double many_clients = (jobs / clients) * clients / Since(t0);
  cancel_all();

  // 2. Latency on an idle cluster.
  std::vector<double> client_latency, server_latency;
  for (int r = 0; r < rounds; ++r) {
    t0 = Clock::now();
    auto sub = admin.Call("submit_job", body);
    if (!sub.ok()) {
      ++failures;
      continue;
    }
    const std::string id = (*sub)["job_id"];
    std::string state = (*sub)["state"];
    json job;
    while (state != "RUNNING" && !Terminal(state)) {
      auto g = admin.Call("get_job", {{"job_id", id}});
      if (!g.ok()) break;
      state = (*g)["job"]["state"];
    }
    client_latency.push_back(Since(t0));
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline) {
      auto g = admin.Call("get_job", {{"job_id", id}});
      if (!g.ok()) break;
      job = (*g)["job"];
      if (Terminal(job["state"])) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (job.is_object() && job["started_at"].get<double>() > 0) {
      server_latency.push_back(job["started_at"].get<double>() - job["submitted_at"].get<double>());
    }
    if (!job.is_object() || job["state"] != "SUCCEEDED") {
      ++failures;
      std::fprintf(stderr, "bench_schedule: job %s ended %s\n", id.c_str(), job.dump().c_str());
    }
  }

  const json slurm = {{"reference_jobs_per_sec", 500}};
  const std::string ref = "; baseline = Slurm's documented 500 jobs/s (a reference value, not measured here)";
  Emit("submissions_per_sec_1client_vs_slurm", one_client / 500, "x", jobs, {{"jobs_per_sec", one_client}}, slurm,
       "submit_job of a no-op job back to back from one client, jobs beyond the 2 slots queue" + ref);
  Emit("submissions_per_sec_" + std::to_string(clients) + "clients_vs_slurm", many_clients / 500, "x",
       (jobs / clients) * clients, {{"jobs_per_sec", many_clients}}, slurm,
       std::to_string(clients) + " clients at once" + ref);
  if (!client_latency.empty()) {
    Emit("submit_to_running_seconds", Median(client_latency), "s", client_latency.size(), Spread(client_latency),
         server_latency.empty() ? json(nullptr) : Spread(server_latency),
         "idle cluster; gantry = client-side, submit_job sent -> state RUNNING seen; baseline = the "
         "coordinator's own submitted_at -> started_at (launch begins)");
  }
  if (failures > 0) {
    std::fprintf(stderr, "bench_schedule: %d requests or jobs failed\n", failures.load());
    return 1;
  }
  return 0;
}
