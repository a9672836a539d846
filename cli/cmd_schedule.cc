// gantry schedule add FILE.yaml | list | show NAME | pause NAME |
// resume NAME | rm NAME | trigger NAME | history NAME, all with --json:
// retraining schedules the coordinator runs (docs/retraining.md; requests in
// docs/protocol.md, "Schedules").
//
// `add` reads the YAML here: the job template (`job:` inline or a file
// relative to the schedule's file) is validated with JobSpec::Parse, which
// resolves its relative paths against its own file, and sent inline;
// triggers.new_data.dir is made absolute against the schedule's file. The
// coordinator validates the whole schedule and names the field it refuses.
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "cli/render.h"
#include "common/config.h"
#include "common/job_spec.h"

namespace gantry::cli {
namespace {

namespace fs = std::filesystem;

// j[key] of a const object, null when absent.
json At(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() ? json(nullptr) : *it;
}

std::string Str(const json& j, const char* key) {
  if (!j.is_object()) return "-";
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

std::string Num(const json& j, const char* key) {
  if (!j.is_object()) return "-";
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? FormatNumber(it->get<double>()) : "-";
}

std::string Version(const json& j, const char* key) {
  if (!j.is_object()) return "-";
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? "v" + std::to_string(it->get<int64_t>()) : "-";
}

// What a schedule's triggers are, in a few words.
std::string Triggers(const json& spec) {
  const json t = spec.is_object() ? spec.value("triggers", json::object()) : json::object();
  std::vector<std::string> parts;
  if (t.contains("cron")) parts.push_back("cron \"" + Str(t, "cron") + "\" " + Str(t, "time_zone"));
  if (t.contains("new_data")) parts.push_back("new data in " + Str(At(t, "new_data"), "dir"));
  if (t.value("drift", false)) parts.push_back("drift");
  if (t.contains("alerts")) parts.push_back("alerts " + t["alerts"].dump());
  parts.push_back("manual");
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

std::string RunSummary(const json& run) {
  if (!run.is_object()) return "-";
  std::string s = "#" + Str(run, "seq") + " " + Str(run, "state") + " (job " + Str(run, "job_id") + ")";
  return s;
}

// The wire form of a schedule file: the job inline, paths absolute.
Result<json> ReadSchedule(const std::string& file) {
  GANTRY_ASSIGN_OR_RETURN(json doc, LoadYamlFile(file));
  if (!doc.is_object()) return Status::InvalidArgument(file + ": schedule: must be a YAML map");
  const fs::path base = fs::absolute(file).parent_path();
  if (auto job = doc.find("job"); job != doc.end()) {
    json job_doc = *job;
    fs::path job_dir = base;
    std::string job_what = "job";
    if (job->is_string()) {
      fs::path p(job->get<std::string>());
      if (p.is_relative()) p = base / p;
      auto loaded = LoadYamlFile(p.string());
      if (!loaded.ok()) {
        return Status::InvalidArgument(file + ": schedule: job: cannot read " + p.string() + ": " +
                                       loaded.status().message());
      }
      job_doc = std::move(loaded).value();
      job_dir = p.parent_path();
      job_what = "job (" + p.string() + ")";
    }
    if (job_doc.is_object()) {
      auto spec = JobSpec::Parse(job_doc, job_dir.string());
      if (!spec.ok()) {
        return Status::InvalidArgument(file + ": schedule: " + job_what + ": " + spec.status().message());
      }
      *job = spec->ToJson();
    }
  }
  if (auto t = doc.find("triggers"); t != doc.end() && t->is_object()) {
    if (auto nd = t->find("new_data"); nd != t->end() && nd->is_object()) {
      if (auto dir = nd->find("dir"); dir != nd->end() && dir->is_string()) {
        fs::path p(dir->get<std::string>());
        if (p.is_relative()) *dir = (base / p).lexically_normal().string();
      }
    }
  }
  return doc;
}

int Add(Context& ctx, const std::string& file, bool as_json) {
  auto spec = ReadSchedule(file);
  if (!spec.ok()) return Fail(spec.status());  // names the file
  auto r = ctx.Call(kCoordinator, "schedule_add", {{"spec", *spec}});
  if (!r.ok()) return Fail(r.status().WithContext(file));
  if (as_json) {
    PrintJson(*r);
    return 0;
  }
  const json s = At(*r, "schedule");
  std::cout << "added schedule " << Str(s, "name") << ": retrains " << Str(s, "model") << ", promotes to "
            << Str(s, "model") << "@" << Str(s, "champion") << "\n"
            << "  triggers: " << Triggers(At(s, "spec")) << "\n"
            << "  run it now: gantry schedule trigger " << Str(s, "name") << "\n";
  return 0;
}

int List(Context& ctx, bool as_json) {
  auto r = ctx.Call(kCoordinator, "schedule_list", json::object(), Retrying(std::chrono::seconds(10)));
  if (!r.ok()) return Fail(r.status());
  if (as_json) {
    PrintJson(*r);
    return 0;
  }
  const json all = At(*r, "schedules");
  if (all.empty()) {
    std::cout << "No schedules. Add one: gantry schedule add FILE.yaml (docs/retraining.md)\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& s : all) {
    rows.push_back({Str(s, "name"), Str(s, "model") + "@" + Str(s, "champion"),
                    (At(s, "paused") == true) ? "paused" : "active", Str(s, "runs"), RunSummary(At(s, "last_run")),
                    Triggers(At(s, "spec"))});
  }
  std::cout << FormatTable({"NAME", "CHAMPION", "STATE", "RUNS", "LAST RUN", "TRIGGERS"}, rows);
  return 0;
}

int Show(Context& ctx, const std::string& name, bool as_json) {
  auto r = ctx.Call(kCoordinator, "schedule_show", {{"name", name}}, Retrying(std::chrono::seconds(10)));
  if (!r.ok()) return Fail(r.status());
  if (as_json) {
    PrintJson(*r);
    return 0;
  }
  const json s = At(*r, "schedule");
  const json spec = At(s, "spec");
  const json ev = At(spec, "evaluation");
  std::cout << "schedule  " << Str(s, "name") << ((At(s, "paused") == true) ? " (paused)" : "") << "\n"
            << "model     " << Str(s, "model") << ", champion alias " << Str(s, "champion") << "\n"
            << "job       " << Str(At(spec, "job"), "name") << "\n"
            << "triggers  " << Triggers(spec) << "\n"
            << "replay    " << Num(spec, "replay") << "\n"
            << "gate      " << Str(ev, "metric") << (At(ev, "higher_is_better") == false ? " (lower)" : " (higher)")
            << ", margin " << Num(ev, "margin") << ", floor " << Num(ev, "floor") << "\n"
            << "runs      " << Str(s, "runs") << ", last " << RunSummary(At(s, "last_run")) << "\n"
            << "running   " << RunSummary(At(s, "active_run")) << "\n";
  return 0;
}

int History(Context& ctx, const std::string& name, bool as_json) {
  auto r = ctx.Call(kCoordinator, "schedule_history", {{"name", name}}, Retrying(std::chrono::seconds(10)));
  if (!r.ok()) return Fail(r.status());
  if (as_json) {
    PrintJson(*r);
    return 0;
  }
  const json runs = At(*r, "runs");
  if (runs.empty()) {
    std::cout << "No runs of " << name << " yet (gantry schedule trigger " << name << " starts one).\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& run : runs) {
    std::string why;
    for (const json& t : At(run, "triggers")) why += (why.empty() ? "" : ",") + Str(t, "kind");
    const json d = At(run, "decision");
    std::string reason = Str(run, "error");
    if (d.is_object()) reason = Str(d, "reason");
    rows.push_back({Str(run, "seq"), FormatTime(At(run, "started_at").is_number() ? At(run, "started_at").get<double>() : 0.0), why, Str(run, "job_id"),
                    Str(run, "state"), d.is_object() ? Version(d, "champion_version") : "-",
                    d.is_object() ? Num(d, "champion_value") : "-", d.is_object() ? Version(d, "challenger_version") : "-",
                    d.is_object() ? Num(d, "challenger_value") : "-", std::to_string(At(run, "files").size()),
                    reason.empty() ? "-" : reason});
  }
  std::cout << FormatTable({"RUN", "STARTED", "TRIGGERS", "JOB", "OUTCOME", "CHAMPION", "SCORE", "CHALLENGER",
                            "SCORE", "FILES", "REASON"},
                           rows);
  return 0;
}

int Simple(Context& ctx, const std::string& type, const std::string& name, bool as_json, const std::string& said) {
  auto r = ctx.Call(kCoordinator, type, {{"name", name}});
  if (!r.ok()) return Fail(r.status());
  if (as_json) {
    PrintJson(*r);
  } else {
    std::cout << said << "\n";
  }
  return 0;
}

}  // namespace

void AddScheduleCommands(CLI::App& app, Context& ctx, Action& action) {
  struct Opts {
    std::string arg;
    bool as_json = false;
  };
  auto* schedule = app.add_subcommand("schedule", "Retraining schedules: retrain on new data, promote if better");
  schedule->require_subcommand(1);
  auto add = [&](const char* name, const char* help, const char* arg_name, const char* arg_help,
                 std::function<int(Context&, const Opts&)> run) {
    auto o = std::make_shared<Opts>();
    auto* cmd = schedule->add_subcommand(name, help);
    if (arg_name) cmd->add_option(arg_name, o->arg, arg_help)->required();
    cmd->add_flag("--json", o->as_json, "The coordinator's reply as JSON");
    cmd->callback([&ctx, &action, o, run] { action = [&ctx, o, run] { return run(ctx, *o); }; });
  };
  add("add", "Add a schedule from a YAML file", "file", "Schedule file (docs/retraining.md)",
      [](Context& c, const Opts& o) { return Add(c, o.arg, o.as_json); });
  add("list", "List schedules and their last run", nullptr, nullptr,
      [](Context& c, const Opts& o) { return List(c, o.as_json); });
  add("show", "Show a schedule", "name", "Schedule name",
      [](Context& c, const Opts& o) { return Show(c, o.arg, o.as_json); });
  add("pause", "Stop a schedule's triggers (a run going finishes)", "name", "Schedule name",
      [](Context& c, const Opts& o) {
        return Simple(c, "schedule_pause", o.arg, o.as_json, "paused schedule " + o.arg);
      });
  add("resume", "Let a paused schedule's triggers fire again", "name", "Schedule name",
      [](Context& c, const Opts& o) {
        return Simple(c, "schedule_resume", o.arg, o.as_json, "resumed schedule " + o.arg);
      });
  add("rm", "Remove a schedule (its run history stays)", "name", "Schedule name",
      [](Context& c, const Opts& o) { return Simple(c, "schedule_rm", o.arg, o.as_json, "removed schedule " + o.arg); });
  add("trigger", "Start a run now (or after the run going)", "name", "Schedule name",
      [](Context& c, const Opts& o) {
        return Simple(c, "schedule_trigger", o.arg, o.as_json,
                      "triggered " + o.arg + "; follow it with: gantry schedule history " + o.arg);
      });
  add("history", "Every run of a schedule and the gate's decision", "name", "Schedule name",
      [](Context& c, const Opts& o) { return History(c, o.arg, o.as_json); });
}

}  // namespace gantry::cli
