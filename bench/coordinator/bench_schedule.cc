// bench_schedule: how fast the coordinator takes jobs, against a running
// cluster (bench/schedule.sh starts one with `gantry up --port-base 0`),
// and, when given a batch script, how fast a real Slurm takes the same jobs
// (bench/schedule.sh starts a single-node one, tests/integration/slurm_lib.sh).
//
//   bench_schedule ENDPOINT SPEC.yaml [jobs=200] [clients=4] [latency_rounds=10] [SLURM_SCRIPT]
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
// With SLURM_SCRIPT (a batch script that runs the same no-op job's worker
// under srun), each measurement is repeated against Slurm right after
// Gantry's: `sbatch --parsable SLURM_SCRIPT` back to back (jobs beyond the
// node's CPUs pend; all are scancel'ed after), the same from `clients`
// threads, and per latency round sbatch -> `squeue` says RUNNING, then the
// job is left to finish. Slurm is driven through its CLI (one process per
// request), Gantry through one RPC connection per client: the note says so.
// Prints one JSON line per figure: against the measured Slurm when given,
// else against Slurm's documented 500 jobs/s (a reference value).
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>
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

// Runs a shell command; its stdout (and exit status in `rc`).
std::string Run(const std::string& cmd, int* rc = nullptr) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int st = ::pclose(p);
  if (rc) *rc = st;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// A single-node Slurm driven through its CLI, as a user (or Gantry's slurm
// launcher) submits to it.
class Slurm {
 public:
  explicit Slurm(std::string script) : script_(std::move(script)) {}
  // sbatch; the job id, or "" on failure.
  std::string Submit() const {
    int rc = 0;
    std::string out = Run("sbatch --parsable --output=/dev/null " + script_ + " 2>&1", &rc);
    if (rc != 0 || out.empty() || out.find_first_not_of("0123456789;") != std::string::npos) {
      std::fprintf(stderr, "bench_schedule: sbatch: %s\n", out.c_str());
      return "";
    }
    return out.substr(0, out.find(';'));
  }
  // squeue's state for the job: PENDING, RUNNING, COMPLETING, … or "" once gone.
  std::string State(const std::string& id) const { return Run("squeue -h -t all -o %T -j " + id + " 2>/dev/null"); }
  // Cancels every job of this user in this (scratch) Slurm and waits until none is left.
  void CancelAll() const {
    Run("scancel --quiet --user=$(id -un) 2>&1");
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline && !Run("squeue -h -o %i 2>/dev/null").empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

 private:
  std::string script_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_schedule ENDPOINT SPEC.yaml [jobs=200] [clients=4] [latency_rounds=10] [SLURM_SCRIPT]\n");
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

  const std::optional<Slurm> slurm = argc > 6 ? std::optional<Slurm>(Slurm(argv[6])) : std::nullopt;
  std::atomic<int> slurm_failures{0};
  std::vector<std::string> slurm_ids;  // guarded by ids_mu
  auto sbatch_many = [&](int n) {
    std::vector<std::string> mine;
    for (int i = 0; i < n; ++i) {
      std::string id = slurm->Submit();
      if (id.empty()) {
        ++slurm_failures;
      } else {
        mine.push_back(id);
      }
    }
    std::lock_guard<std::mutex> lock(ids_mu);
    slurm_ids.insert(slurm_ids.end(), mine.begin(), mine.end());
  };
  // Wall time of `fn(jobs / clients)` run by `clients` threads at once.
  auto concurrently = [&](auto fn) {
    auto t = Clock::now();
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) threads.emplace_back(fn, jobs / clients);
    for (auto& th : threads) th.join();
    return Since(t);
  };

  // 1. Throughput: one client, then `clients` at once; Gantry, then Slurm.
  auto t0 = Clock::now();
  submit_many(jobs);
  const double one_client = jobs / Since(t0);
  cancel_all();
  double slurm_one_client = 0, slurm_many_clients = 0;
  if (slurm) {
    t0 = Clock::now();
    sbatch_many(jobs);
    slurm_one_client = jobs / Since(t0);
    slurm->CancelAll();
  }
  const double many_clients = (jobs / clients) * clients / concurrently(submit_many);
  cancel_all();
  if (slurm) {
    slurm_many_clients = (jobs / clients) * clients / concurrently(sbatch_many);
    slurm->CancelAll();
  }

  // 2. Latency on an idle cluster, alternating Gantry and Slurm.
  std::vector<double> client_latency, server_latency, slurm_latency;
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
    if (!slurm) continue;
    t0 = Clock::now();
    const std::string sid = slurm->Submit();
    if (sid.empty()) {
      ++slurm_failures;
      continue;
    }
    std::string st = slurm->State(sid);
    while (st == "PENDING" || st == "CONFIGURING") st = slurm->State(sid);
    slurm_latency.push_back(Since(t0));
    const auto sdeadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < sdeadline && (st == "RUNNING" || st == "COMPLETING" || st == "PENDING")) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      st = slurm->State(sid);
    }
    if (st != "COMPLETED") {
      ++slurm_failures;
      std::fprintf(stderr, "bench_schedule: Slurm job %s ended %s\n", sid.c_str(), st.c_str());
    }
  }

  const std::string how =
      "; gantry = submit_job over one ZeroMQ connection per client, slurm = `sbatch --parsable` (one "
      "process per submission) on a single-node Slurm started by bench/schedule.sh, same no-op job (its "
      "worker under srun)";
  auto throughput = [&](const std::string& metric, double gantry_rate, double slurm_rate, size_t n,
                        const std::string& note) {
    if (slurm) {
      Emit(metric, gantry_rate / slurm_rate, "x", n, {{"jobs_per_sec", gantry_rate}},
           {{"slurm_jobs_per_sec", slurm_rate}, {"reference_jobs_per_sec", 500}}, note + how);
    } else {
      Emit(metric, gantry_rate / 500, "x", n, {{"jobs_per_sec", gantry_rate}}, {{"reference_jobs_per_sec", 500}},
           note + "; baseline = Slurm's documented 500 jobs/s (a reference value, not measured here: no Slurm)");
    }
  };
  throughput("submissions_per_sec_1client_vs_slurm", one_client, slurm_one_client, jobs,
             "no-op jobs back to back from one client, jobs beyond the 2 slots (CPUs) queue");
  throughput("submissions_per_sec_" + std::to_string(clients) + "clients_vs_slurm", many_clients,
             slurm_many_clients, (jobs / clients) * clients, std::to_string(clients) + " clients at once");
  if (!client_latency.empty()) {
    Emit("submit_to_running_seconds", Median(client_latency), "s", client_latency.size(), Spread(client_latency),
         server_latency.empty() ? json(nullptr) : Spread(server_latency),
         "idle cluster; gantry = client-side, submit_job sent -> state RUNNING seen; baseline = the "
         "coordinator's own submitted_at -> started_at (launch begins)");
  }
  if (!slurm_latency.empty() && !client_latency.empty()) {
    Emit("submit_to_running_vs_slurm", Median(client_latency) / Median(slurm_latency), "x", slurm_latency.size(),
         Spread(client_latency), Spread(slurm_latency),
         "idle cluster, client-side seconds, rounds alternating; gantry = submit_job sent -> RUNNING seen "
         "(get_job polls); slurm = sbatch started -> squeue says RUNNING (squeue polls, one process each); "
         "value < 1: Gantry starts jobs sooner");
  }
  if (failures > 0 || slurm_failures > 0) {
    std::fprintf(stderr, "bench_schedule: %d Gantry and %d Slurm requests or jobs failed\n", failures.load(),
                 slurm_failures.load());
    return 1;
  }
  return 0;
}
