// gantry alerts [--job ID] [--json]: the monitor's pending, firing and
// resolved alerts (the monitor's `get_alerts` request; docs/cli.md).
#include <iostream>

#include "cli/commands.h"
#include "cli/render.h"

namespace gantry::cli {
namespace {

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

int Alerts(Context& ctx, const std::string& job, bool as_json) {
  json body = json::object();
  if (!job.empty()) body["job_id"] = job;
  auto r = ctx.Call(kMonitor, "get_alerts", body);
  if (!r.ok()) return Fail(r.status());
  if (as_json) {
    PrintJson(*r);
    return 0;
  }
  const json& alerts = (*r)["alerts"];
  if (alerts.empty()) {
    std::cout << "No alerts" << (job.empty() ? "" : " for job " + job) << ".\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& a : alerts) {
    rows.push_back({Str(a, "state"), Str(a, "severity"), Str(a, "rule"), Str(a, "job_id"), Str(a, "rank"),
                    Str(a, "action"), Str(a, "why")});
  }
  std::cout << FormatTable({"STATE", "SEVERITY", "RULE", "JOB", "RANK", "ACTION", "WHY"}, rows);
  return 0;
}

}  // namespace

void AddAlertsCommand(CLI::App& app, Context& ctx, Action& action) {
  struct Opts {
    std::string job;
    bool as_json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("alerts", "List the monitor's pending, firing and resolved alerts");
  cmd->add_option("--job", o->job, "Only this job's alerts");
  cmd->add_flag("--json", o->as_json, "The get_alerts reply as JSON");
  cmd->callback([&ctx, &action, o] { action = [&ctx, o] { return Alerts(ctx, o->job, o->as_json); }; });
}

}  // namespace gantry::cli
