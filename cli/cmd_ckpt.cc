// gantry ckpt ...: the checkpoint registry kept by gantry-storage.
#include <iostream>

#include "cli/commands.h"

namespace gantry::cli {
namespace {

std::string Bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", b, units[u]);
  return buf;
}

std::string Metrics(const json& m) {
  std::string out;
  for (const auto& [k, v] : m.items()) {
    if (!v.is_number()) continue;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s=%.4g", k.c_str(), v.get<double>());
    out += (out.empty() ? "" : " ") + std::string(buf);
  }
  return out.empty() ? "-" : out;
}

int List(Context& ctx, const std::string& model, bool as_json) {
  auto r = ctx.Call(kStorage, "list_versions", {{"model", model}});
  if (!r.ok()) return Fail(r.status());
  if (as_json) {
    PrintJson(*r);
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& v : (*r)["versions"]) {
    rows.push_back({"v" + std::to_string(v["version"].get<int64_t>()), v["job_id"], std::to_string(v["step"].get<int64_t>()),
                    Bytes(v["bytes"].get<double>()), FormatTime(v["created_at"]), Metrics(v["metrics"])});
  }
  PrintTable({"VERSION", "JOB", "STEP", "SIZE", "CREATED", "METRICS"}, rows);
  return 0;
}

int Models(Context& ctx, bool as_json) {
  auto r = ctx.Call(kStorage, "list_models");
  if (!r.ok()) return Fail(r.status());
  if (as_json) {
    PrintJson(*r);
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : (*r)["models"]) {
    rows.push_back({m["name"], std::to_string(m["versions"].get<int64_t>()), "v" + std::to_string(m["latest"].get<int64_t>())});
  }
  if (rows.empty()) {
    std::cout << "no checkpoints yet\n";
    return 0;
  }
  PrintTable({"MODEL", "VERSIONS", "LATEST"}, rows);
  return 0;
}

}  // namespace

void AddCkptCommands(CLI::App& app, Context& ctx, Action& action) {
  auto* ckpt = app.add_subcommand("ckpt", "Checkpoint registry");
  ckpt->require_subcommand(1);
  struct Opts {
    std::string model;
    bool as_json = false;
  };
  auto lo = std::make_shared<Opts>();
  auto* list = ckpt->add_subcommand("list", "List the versions of a model");
  list->add_option("model", lo->model, "Model name (the job's checkpoint.model, default its name)")->required();
  list->add_flag("--json", lo->as_json, "Machine-readable output");
  list->callback([&ctx, &action, lo] { action = [&ctx, lo] { return List(ctx, lo->model, lo->as_json); }; });

  auto mo = std::make_shared<Opts>();
  auto* models = ckpt->add_subcommand("models", "List models that have checkpoints");
  models->add_flag("--json", mo->as_json, "Machine-readable output");
  models->callback([&ctx, &action, mo] { action = [&ctx, mo] { return Models(ctx, mo->as_json); }; });
}

}  // namespace gantry::cli
