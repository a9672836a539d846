// gantry submit / jobs / job show / cancel / logs / wait.
#include <filesystem>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "cli/render.h"
#include "common/ids.h"
#include "common/config.h"
#include "common/job_spec.h"

namespace gantry::cli {
namespace {

struct SubmitOptions {
  std::string file;
  std::vector<std::string> sets;
  bool as_json = false;
  bool quiet = false;
};

int Submit(Context& ctx, const SubmitOptions& o) {
  auto doc = LoadYamlFile(o.file);
  if (!doc.ok()) return Fail(doc.status());
  for (const auto& s : o.sets) {
    if (Status st = ApplyOverride(*doc, s); !st.ok()) return Fail(st);
  }
  std::string base = std::filesystem::absolute(o.file).parent_path().string();
  // Validate here too: a bad spec is refused even when no cluster runs, and
  // relative paths resolve against the spec file, not the coordinator's cwd.
  auto spec = JobSpec::Parse(*doc, base);
  if (!spec.ok()) return Fail(spec.status().WithContext(o.file));
  // One request id per `gantry submit`, reused on a retry: a coordinator
  // that queued the job and died before replying answers the retry with
  // that job instead of queueing a second one.
  auto r = ctx.Call(kCoordinator, "submit_job", {{"spec", spec->ToJson()}, {kRequestIdField, NewRequestId()}},
                    Retrying(std::chrono::seconds(30)));
  if (!r.ok()) return Fail(r.status().WithContext(o.file));
  std::string id = (*r)["job_id"];
  if (o.as_json) {
    PrintJson({{"job_id", id}, {"state", (*r)["state"]}});
  } else if (o.quiet) {
    std::cout << id << "\n";
  } else {
    std::cout << "submitted " << id << " (" << spec->name << ", " << spec->resources.workers << " workers)\n"
              << "  watch it:  gantry watch " << id << "\n";
  }
  return 0;
}

int Jobs(Context& ctx, bool all, int limit, bool as_json) {
  auto r = ctx.Call(kCoordinator, "list_jobs", {{"active_only", false}, {"limit", all ? 100000 : limit}});
  if (!r.ok()) return Fail(r.status());
  if (as_json) {
    PrintJson(*r);
    return 0;
  }
  RenderJobs(*r, std::cout);
  return 0;
}

int Show(Context& ctx, const std::string& id, bool as_json) {
  auto r = ctx.Call(kCoordinator, "get_job", {{"job_id", id}});
  if (!r.ok()) return Fail(r.status());
  if (as_json) {
    PrintJson(*r);
    return 0;
  }
  RenderJob(*r, std::cout);
  return 0;
}

int Cancel(Context& ctx, const std::string& id, bool as_json) {
  auto r = ctx.Call(kCoordinator, "cancel_job", {{"job_id", id}});
  if (!r.ok()) return Fail(r.status());
  if (as_json) PrintJson(*r);
  else std::cout << id << ": " << (*r)["state"].get<std::string>() << " (" << (*r)["reason"].get<std::string>() << ")\n";
  return 0;
}

struct LogOptions {
  std::string id;
  int rank = 0;
  int attempt = 0;  // 0 = latest
  bool launcher = false;
};

int Logs(Context& ctx, const LogOptions& o) {
  int64_t offset = 0;
  while (true) {
    json body = {{"job_id", o.id}, {"rank", o.rank}, {"attempt", o.attempt}, {"launcher", o.launcher},
                 {"offset", offset}};
    auto r = ctx.Call(kCoordinator, "get_logs", body);
    if (!r.ok()) return Fail(r.status());
    const auto& data = (*r)["data"].get_binary();
    std::cout.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    offset = (*r)["next_offset"];
    if ((*r)["eof"].get<bool>()) break;
  }
  std::cout.flush();
  return 0;
}

int Wait(Context& ctx, const std::string& id, const std::string& want, double timeout_s, bool as_json) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(timeout_s * 1000));
  json job;
  while (true) {
    auto r = ctx.Call(kCoordinator, "get_job", {{"job_id", id}});
    if (!r.ok()) return Fail(r.status());
    job = (*r)["job"];
    std::string state = job["state"];
    bool done = IsTerminalState(state);
    if (want == state || (want.empty() && done) || (done && !want.empty())) break;
    if (timeout_s > 0 && std::chrono::steady_clock::now() >= deadline) {
      std::cerr << "gantry: timed out after " << timeout_s << " s waiting for " << id << " (now " << state << ")\n";
      return kExitTimeout;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (as_json) PrintJson(job);
  else std::cout << id << ": " << job["state"].get<std::string>() << " (" << job["reason"].get<std::string>() << ")\n";
  std::string state = job["state"];
  if (!want.empty() && state == want) return 0;
  return ExitCodeForState(state);
}

}  // namespace

void AddJobCommands(CLI::App& app, Context& ctx, Action& action) {
  auto so = std::make_shared<SubmitOptions>();
  auto* submit = app.add_subcommand("submit", "Validate a job spec (YAML) and queue it");
  submit->add_option("spec", so->file, "Job spec file, e.g. configs/jobs/fashion_mnist.yaml")->required();
  submit->add_option("--set", so->sets, "Override a field: --set train.steps=50 (repeatable)");
  submit->add_flag("--json", so->as_json, "Print {\"job_id\": ...}");
  submit->add_flag("-q,--quiet", so->quiet, "Print only the job id");
  submit->callback([&ctx, &action, so] { action = [&ctx, so] { return Submit(ctx, *so); }; });

  struct ListOpts {
    bool all = false, as_json = false;
    int limit = 50;
  };
  auto lo = std::make_shared<ListOpts>();
  auto* jobs = app.add_subcommand("jobs", "List recent jobs, oldest first");
  jobs->add_flag("--all", lo->all, "Every job ever submitted");
  jobs->add_option("--limit", lo->limit, "How many of the newest jobs (default 50)");
  jobs->add_flag("--json", lo->as_json, "Machine-readable output");
  jobs->callback([&ctx, &action, lo] { action = [&ctx, lo] { return Jobs(ctx, lo->all, lo->limit, lo->as_json); }; });

  struct IdOpts {
    std::string id;
    bool as_json = false;
  };
  auto show = std::make_shared<IdOpts>();
  auto* job = app.add_subcommand("job", "Inspect one job");
  job->require_subcommand(1);
  auto* job_show = job->add_subcommand("show", "State, spec summary and attempts of a job");
  job_show->add_option("id", show->id, "Job id")->required();
  job_show->add_flag("--json", show->as_json, "Machine-readable output");
  job_show->callback([&ctx, &action, show] { action = [&ctx, show] { return Show(ctx, show->id, show->as_json); }; });

  auto cancel = std::make_shared<IdOpts>();
  auto* c = app.add_subcommand("cancel", "Cancel a queued or running job (workers get SIGTERM, then SIGKILL)");
  c->add_option("id", cancel->id, "Job id")->required();
  c->add_flag("--json", cancel->as_json, "Machine-readable output");
  c->callback([&ctx, &action, cancel] { action = [&ctx, cancel] { return Cancel(ctx, cancel->id, cancel->as_json); }; });

  auto lg = std::make_shared<LogOptions>();
  auto* logs = app.add_subcommand("logs", "Print a job's rank output");
  logs->add_option("id", lg->id, "Job id")->required();
  logs->add_option("--rank", lg->rank, "Rank (default 0)");
  logs->add_option("--attempt", lg->attempt, "Attempt (default: the latest)");
  logs->add_flag("--launcher", lg->launcher, "mpirun's own output instead of a rank's");
  logs->callback([&ctx, &action, lg] { action = [&ctx, lg] { return Logs(ctx, *lg); }; });

  struct WaitOpts {
    std::string id, state;
    double timeout = 0;
    bool as_json = false;
  };
  auto wo = std::make_shared<WaitOpts>();
  auto* wait = app.add_subcommand("wait", "Block until a job reaches a state (default: finished)");
  wait->add_option("id", wo->id, "Job id")->required();
  wait->add_option("--state", wo->state, "State to wait for, e.g. RUNNING")
      ->check(CLI::IsMember({"QUEUED", "SCHEDULED", "RUNNING", "RESTARTING", "SUCCEEDED", "FAILED", "CANCELLED"}));
  wait->add_option("--timeout", wo->timeout, "Give up after this many seconds (exit 4)");
  wait->add_flag("--json", wo->as_json, "Print the job as JSON");
  wait->callback([&ctx, &action, wo] {
    action = [&ctx, wo] { return Wait(ctx, wo->id, wo->state, wo->timeout, wo->as_json); };
  });
}

}  // namespace gantry::cli
