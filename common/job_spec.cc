#include "common/job_spec.h"

#include <unistd.h>

#include "common/alert_rules.h"
#include "common/config.h"
#include "common/fs.h"
#include "common/ids.h"

namespace gantry {
namespace {

template <typename T>
void Positive(FieldReader& r, const std::string& key, T v) {
  if (v <= 0) r.Fail(key, "must be > 0 (got " + std::to_string(v) + ")");
}

template <typename T>
void NonNegative(FieldReader& r, const std::string& key, T v) {
  if (v < 0) r.Fail(key, "must be >= 0 (got " + std::to_string(v) + ")");
}

void OneOf(FieldReader& r, const std::string& key, const std::string& v,
           std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (v == a) return;
    list += list.empty() ? "" : ", ";
    list += a;
  }
  r.Fail(key, "must be one of " + list + " (got '" + v + "')");
}

// A duration in seconds: a number, or a string with a unit ("90s", "30m",
// "2h", "1d"). Absent keeps `out`; must be > 0 when given.
void ReadDuration(FieldReader& r, const std::string& key, double& out) {
  json v;
  r.Get(key, v);
  if (v.is_null()) return;
  double seconds = -1;
  if (v.is_number()) {
    seconds = v.get<double>();
  } else if (v.is_string()) {
    const std::string text = v.get<std::string>();
    size_t used = 0;
    double n = -1;
    try {
      n = std::stod(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    const std::string unit = used > 0 ? text.substr(used) : "";
    const double scale = unit == "" || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
    if (used > 0 && scale > 0) seconds = n * scale;
  }
  if (!(seconds > 0)) {
    r.Fail(key, "must be a positive duration: seconds, or a number with s, m, h or d, like \"2h\" (got " +
                    v.dump() + ")");
    return;
  }
  out = seconds;
}

}  // namespace

Result<JobSpec> JobSpec::Parse(const json& j, const std::string& base_dir) {
  JobSpec s;
  FieldReader r(j, "");
  r.Get("name", s.name);
  if (!r.Has("name")) r.Fail("name", "is required (a short name like fashion-mnist)");
  else if (Status st = ValidateName(s.name, "name"); !st.ok()) r.Fail("name", "is invalid: " + st.message());
  r.Get("priority", s.priority);
  ReadDuration(r, "max_runtime", s.max_runtime);
  r.Get("warm_start", s.warm_start);
  if (!s.warm_start.empty()) {
    auto at = s.warm_start.find('@');
    if (at == std::string::npos || at == 0 || at + 1 == s.warm_start.size()) {
      r.Fail("warm_start", "must be MODEL@REF, e.g. fashion-mnist@production (got '" + s.warm_start + "')");
    }
  }

  FieldReader m = r.Child("model");
  m.Get("builtin", s.model.builtin);
  m.Get("hidden", s.model.hidden);
  m.Get("torchscript", s.model.torchscript);
  if (s.model.torchscript.empty()) OneOf(m, "builtin", s.model.builtin, {"mlp", "cnn"});
  for (int64_t h : s.model.hidden) {
    if (h <= 0) m.Fail("hidden", "widths must be > 0 (got " + std::to_string(h) + ")");
  }
  if (!s.model.torchscript.empty() && !base_dir.empty()) {
    s.model.torchscript = AbsolutePath(s.model.torchscript, base_dir);
  }

  FieldReader d = r.Child("data");
  d.Get("format", s.data.format);
  d.Get("path", s.data.path);
  d.Get("train_images", s.data.train_images);
  d.Get("train_labels", s.data.train_labels);
  d.Get("test_images", s.data.test_images);
  d.Get("test_labels", s.data.test_labels);
  d.Get("limit", s.data.limit);
  d.Get("train_file", s.data.train_file);
  d.Get("test_file", s.data.test_file);
  d.Get("label_column", s.data.label_column);
  OneOf(d, "format", s.data.format, {"idx", "csv", "shards"});
  if (s.data.format == "csv" && s.data.train_file.empty()) {
    d.Fail("train_file", "is required when data.format is csv (a CSV file relative to data.path)");
  }
  if (s.data.label_column.empty()) d.Fail("label_column", "must not be empty");
  if (s.data.path.empty()) d.Fail("path", "is required (a directory of IDX files, e.g. /usr/share/datasets/fashion-mnist)");
  else if (!base_dir.empty()) s.data.path = AbsolutePath(s.data.path, base_dir);
  NonNegative(d, "limit", s.data.limit);

  FieldReader res = r.Child("resources");
  res.Get("workers", s.resources.workers);
  res.Get("slots_per_worker", s.resources.slots_per_worker);
  res.Get("device", s.resources.device);
  Positive(res, "workers", s.resources.workers);
  Positive(res, "slots_per_worker", s.resources.slots_per_worker);
  if (s.resources.workers > 4096) res.Fail("workers", "must be <= 4096 (got " + std::to_string(s.resources.workers) + ")");
  OneOf(res, "device", s.resources.device, {"cpu", "cuda"});

  FieldReader t = r.Child("train");
  t.Get("epochs", s.train.epochs);
  t.Get("steps", s.train.steps);
  t.Get("batch_size", s.train.batch_size);
  t.Get("seed", s.train.seed);
  t.Get("threads", s.train.threads);
  t.Get("eval_every", s.train.eval_every);
  t.Get("log_every", s.train.log_every);
  NonNegative(t, "epochs", s.train.epochs);
  NonNegative(t, "steps", s.train.steps);
  if (s.train.epochs == 0 && s.train.steps == 0) t.Fail("steps", "or train.epochs must be > 0");
  Positive(t, "batch_size", s.train.batch_size);
  Positive(t, "threads", s.train.threads);
  NonNegative(t, "eval_every", s.train.eval_every);
  Positive(t, "log_every", s.train.log_every);
  t.Get("bucket_mb", s.train.bucket_mb);
  t.Get("overlap", s.train.overlap);
  t.Get("heartbeat_seconds", s.train.heartbeat_seconds);
  NonNegative(t, "bucket_mb", s.train.bucket_mb);
  Positive(t, "heartbeat_seconds", s.train.heartbeat_seconds);
  FieldReader ls = t.Child("lr_schedule");
  ls.Get("name", s.train.lr_schedule.name);
  ls.Get("warmup_steps", s.train.lr_schedule.warmup_steps);
  ls.Get("step_size", s.train.lr_schedule.step_size);
  ls.Get("gamma", s.train.lr_schedule.gamma);
  ls.Get("min_lr", s.train.lr_schedule.min_lr);
  OneOf(ls, "name", s.train.lr_schedule.name, {"constant", "step", "cosine"});
  NonNegative(ls, "warmup_steps", s.train.lr_schedule.warmup_steps);
  NonNegative(ls, "step_size", s.train.lr_schedule.step_size);
  if (s.train.lr_schedule.name == "step" && s.train.lr_schedule.step_size == 0) {
    ls.Fail("step_size", "must be > 0 for the step schedule");
  }
  Positive(ls, "gamma", s.train.lr_schedule.gamma);
  NonNegative(ls, "min_lr", s.train.lr_schedule.min_lr);
  FieldReader o = t.Child("optimizer");
  o.Get("name", s.train.optimizer.name);
  o.Get("lr", s.train.optimizer.lr);
  o.Get("momentum", s.train.optimizer.momentum);
  o.Get("weight_decay", s.train.optimizer.weight_decay);
  OneOf(o, "name", s.train.optimizer.name, {"sgd", "adam", "adamw"});
  Positive(o, "lr", s.train.optimizer.lr);
  NonNegative(o, "momentum", s.train.optimizer.momentum);
  NonNegative(o, "weight_decay", s.train.optimizer.weight_decay);

  FieldReader c = r.Child("checkpoint");
  c.Get("model", s.checkpoint.model);
  c.Get("every_steps", s.checkpoint.every_steps);
  c.Get("async", s.checkpoint.async);
  c.Get("final_save_timeout", s.checkpoint.final_save_timeout);
  c.Get("keep_latest", s.checkpoint.keep_latest);
  c.Get("keep_best", s.checkpoint.keep_best);
  c.Get("best_metric", s.checkpoint.best_metric);
  c.Get("best_mode", s.checkpoint.best_mode);
  NonNegative(c, "every_steps", s.checkpoint.every_steps);
  NonNegative(c, "keep_latest", s.checkpoint.keep_latest);
  NonNegative(c, "keep_best", s.checkpoint.keep_best);
  Positive(c, "final_save_timeout", s.checkpoint.final_save_timeout);
  OneOf(c, "best_mode", s.checkpoint.best_mode, {"max", "min"});
  if (s.checkpoint.model.empty()) s.checkpoint.model = s.name;
  else if (Status st = ValidateName(s.checkpoint.model, "model"); !st.ok()) c.Fail("model", "is invalid: " + st.message());

  FieldReader rs = r.Child("restart");
  rs.Get("max_restarts", s.restart.max_restarts);
  rs.Get("backoff_seconds", s.restart.backoff_seconds);
  rs.Get("hang_timeout_seconds", s.restart.hang_timeout_seconds);
  NonNegative(rs, "hang_timeout_seconds", s.restart.hang_timeout_seconds);
  NonNegative(rs, "max_restarts", s.restart.max_restarts);
  NonNegative(rs, "backoff_seconds", s.restart.backoff_seconds);

  r.Get("alerts", s.alerts);

  FieldReader rt = r.Child("retrain");
  json new_files;
  rt.Get("new_files", new_files);
  rt.Get("replay", s.retrain.replay);
  rt.Get("replay_seed", s.retrain.replay_seed);
  rt.Get("champion", s.retrain.champion);
  if (!new_files.is_null() && !new_files.is_array()) rt.Fail("new_files", "must be a list of shard names");
  if (new_files.is_array()) {
    for (const json& f : new_files) {
      if (!f.is_string() || f.get<std::string>().empty() || f.get<std::string>().find('/') != std::string::npos) {
        rt.Fail("new_files", "must name shards of data.path without a directory (got " + f.dump() + ")");
        break;
      }
      s.retrain.new_files.push_back(f.get<std::string>());
    }
  }
  if (!s.retrain.new_files.empty() && s.data.format != "shards") {
    rt.Fail("new_files", "needs data.format shards (got '" + s.data.format + "')");
  }
  if (s.retrain.replay < 0 || s.retrain.replay >= 1) {
    rt.Fail("replay", "must be in [0, 1): the share of older shards mixed into the run (got " +
                          std::to_string(s.retrain.replay) + ")");
  }
  if (!s.retrain.champion.empty()) {
    auto at = s.retrain.champion.find('@');
    if (at == std::string::npos || at == 0 || at + 1 == s.retrain.champion.size()) {
      rt.Fail("champion", "must be MODEL@REF, e.g. fashion-mnist@v3 (got '" + s.retrain.champion + "')");
    } else if (s.data.format != "idx" && s.data.test_file.empty()) {
      rt.Fail("champion", "needs a held-out set to score it on: set data.test_file");
    }
  }

  // Report the first error in document order: top-level type problems first,
  // then each section.
  for (FieldReader* fr : {&m, &d, &res, &o, &ls, &t, &c, &rs, &rt, &r}) {
    GANTRY_RETURN_IF_ERROR(fr->Finish());
  }
  if (!s.alerts.is_null()) {
    auto rules = alert_rules::ParseRules(s.alerts, "alerts", alert_rules::RuleScope::kJob, "job spec");
    if (!rules.ok()) return rules.status();
  }
  return s;
}

json JobSpec::ToJson() const {
  json model_j = {{"builtin", model.builtin}, {"hidden", model.hidden}};
  if (!model.torchscript.empty()) model_j["torchscript"] = model.torchscript;
  json out = {
      {"name", name},
      {"priority", priority},
      {"model", model_j},
      {"data",
       {{"format", data.format},
        {"path", data.path},
        {"train_images", data.train_images},
        {"train_labels", data.train_labels},
        {"test_images", data.test_images},
        {"test_labels", data.test_labels},
        {"limit", data.limit},
        {"train_file", data.train_file},
        {"test_file", data.test_file},
        {"label_column", data.label_column}}},
      {"resources",
       {{"workers", resources.workers},
        {"slots_per_worker", resources.slots_per_worker},
        {"device", resources.device}}},
      {"train",
       {{"epochs", train.epochs},
        {"steps", train.steps},
        {"batch_size", train.batch_size},
        {"seed", train.seed},
        {"threads", train.threads},
        {"eval_every", train.eval_every},
        {"log_every", train.log_every},
        {"bucket_mb", train.bucket_mb},
        {"overlap", train.overlap},
        {"heartbeat_seconds", train.heartbeat_seconds},
        {"lr_schedule",
         {{"name", train.lr_schedule.name},
          {"warmup_steps", train.lr_schedule.warmup_steps},
          {"step_size", train.lr_schedule.step_size},
          {"gamma", train.lr_schedule.gamma},
          {"min_lr", train.lr_schedule.min_lr}}},
        {"optimizer",
         {{"name", train.optimizer.name},
          {"lr", train.optimizer.lr},
          {"momentum", train.optimizer.momentum},
          {"weight_decay", train.optimizer.weight_decay}}}}},
      {"checkpoint",
       {{"model", checkpoint.model},
        {"every_steps", checkpoint.every_steps},
        {"async", checkpoint.async},
        {"final_save_timeout", checkpoint.final_save_timeout},
        {"keep_latest", checkpoint.keep_latest},
        {"keep_best", checkpoint.keep_best},
        {"best_metric", checkpoint.best_metric},
        {"best_mode", checkpoint.best_mode}}},
      {"restart",
       {{"max_restarts", restart.max_restarts},
        {"backoff_seconds", restart.backoff_seconds},
        {"hang_timeout_seconds", restart.hang_timeout_seconds}}},
      {"warm_start", warm_start},
  };
  if (!alerts.is_null()) out["alerts"] = alerts;
  if (max_runtime > 0) out["max_runtime"] = max_runtime;
  if (!retrain.empty()) {
    out["retrain"] = {{"new_files", retrain.new_files},
                      {"replay", retrain.replay},
                      {"replay_seed", retrain.replay_seed},
                      {"champion", retrain.champion}};
  }
  return out;
}

Status JobSpec::CheckFiles() const {
  auto check = [&](const std::string& key, const std::string& file) -> Status {
    std::string p = AbsolutePath(file, data.path);
    if (::access(p.c_str(), R_OK) != 0) {
      return Status::InvalidArgument("job spec: data." + key + ": cannot read " + p +
                                     " (check data.path; Fashion-MNIST comes with "
                                     "`apt-get install dataset-fashion-mnist`)");
    }
    return Status::Ok();
  };
  if (!model.torchscript.empty() && ::access(model.torchscript.c_str(), R_OK) != 0) {
    return Status::InvalidArgument("job spec: model.torchscript: cannot read " + model.torchscript);
  }
  if (::access(data.path.c_str(), R_OK | X_OK) != 0) {
    return Status::InvalidArgument("job spec: data.path: no readable directory " + data.path);
  }
  if (data.format == "csv") {
    GANTRY_RETURN_IF_ERROR(check("train_file", data.train_file));
    return data.test_file.empty() ? Status::Ok() : check("test_file", data.test_file);
  }
  if (data.format == "shards") {
    return data.test_file.empty() ? Status::Ok() : check("test_file", data.test_file);
  }
  GANTRY_RETURN_IF_ERROR(check("train_images", data.train_images));
  GANTRY_RETURN_IF_ERROR(check("train_labels", data.train_labels));
  GANTRY_RETURN_IF_ERROR(check("test_images", data.test_images));
  return check("test_labels", data.test_labels);
}

}  // namespace gantry
