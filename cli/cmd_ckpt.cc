// gantry ckpt ...: the checkpoint registry kept by gantry-storage.
//
// Every command is one request to the storage service (docs/protocol.md,
// "Storage"); export and import carry the file's bytes in the request or
// reply, so they work against a storage service on another machine. A
// version is named MODEL@REF where REF is vN, an alias or `latest`
// (MODEL alone means MODEL@latest).
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "cli/commands.h"
#include "cli/render.h"
#include "common/curve.h"
#include "common/ids.h"
#include "common/fs.h"
#include "common/process.h"

namespace gantry::cli {
namespace {

// Export and import move whole models through one message.
constexpr std::chrono::seconds kBulkTimeout{600};
// Room left in a request for everything but the file's bytes (envelope,
// model name, meta).
constexpr uint64_t kImportEnvelopeBytes = 64 << 10;

std::string Bytes(double b) { return FormatBytes(b); }
std::string Number(double x) { return FormatNumber(x); }
std::string Metrics(const json& m) { return FormatMetrics(m); }
std::string Labels(const json& v) { return FormatLabels(v); }

json RefBody(const std::string& s) {
  auto [model, ref] = SplitRef(s);
  return {{"model", model}, {"ref", ref}};
}

// Sends one request; prints the reply as JSON, or hands it to `print`.
int Run(Context& ctx, const std::string& type, const json& body, bool as_json,
        const std::function<void(const json&)>& print, const RpcClient::CallOptions& options) {
  auto r = ctx.Call(kStorage, type, body, options);
  if (!r.ok()) return Fail(r.status());
  if (as_json) {
    PrintJson(*r);
  } else {
    print(*r);
  }
  return 0;
}

int Run(Context& ctx, const std::string& type, const json& body, bool as_json,
        const std::function<void(const json&)>& print,
        std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  RpcClient::CallOptions o;
  o.timeout = timeout;
  return Run(ctx, type, body, as_json, print, o);
}

void PrintList(const json& r) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& v : r["versions"]) {
    rows.push_back({"v" + std::to_string(v["version"].get<int64_t>()), v["job_id"],
                    std::to_string(v["step"].get<int64_t>()), Bytes(v["bytes"].get<double>()),
                    Bytes(v.value("bytes_written", 0.0)), FormatTime(v["created_at"]), Labels(v),
                    Metrics(v["metrics"])});
  }
  PrintTable({"VERSION", "JOB", "STEP", "SIZE", "WRITTEN", "CREATED", "LABELS", "METRICS"}, rows);
  if (r.contains("retention") && r["retention"].is_object()) {
    const json& p = r["retention"];
    std::cout << "retention: latest " << p["keep_latest"];
    if (p["keep_best"].get<int64_t>() > 0) {
      std::cout << ", best " << p["keep_best"] << " by " << p["metric"].get<std::string>() << " ("
                << p["mode"].get<std::string>() << ")";
    }
    std::cout << ", plus aliased and protected versions\n";
  }
}

void PrintModels(const json& r) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : r["models"]) {
    rows.push_back({m["name"], std::to_string(m["versions"].get<int64_t>()),
                    "v" + std::to_string(m["latest"].get<int64_t>()), Bytes(m.value("bytes_written", 0.0))});
  }
  if (rows.empty()) {
    std::cout << "no checkpoints yet\n";
    return;
  }
  PrintTable({"MODEL", "VERSIONS", "LATEST", "STORED"}, rows);
}

void PrintShow(const json& r) {
  std::cout << r["model"].get<std::string>() << " v" << r["version"] << "  (" << Labels(r) << ")"
            << (r.value("protected", false) ? "  protected" : "") << "\n"
            << "  job      " << (r["job_id"].get<std::string>().empty() ? "-" : r["job_id"].get<std::string>())
            << "  attempt " << r["attempt"] << "  step " << r["step"] << "  epoch " << r["epoch"] << "\n"
            << "  created  " << FormatTime(r["created_at"]) << "\n"
            << "  metrics  " << Metrics(r["metrics"]) << "\n"
            << "  size     " << Bytes(r["bytes"].get<double>()) << " in " << r["tensors"].size()
            << " tensors, " << Bytes(r.value("bytes_written", 0.0)) << " written by this save\n"
            << "  path     " << r["path"].get<std::string>() << "\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& t : r["tensors"]) {
    std::string shape;
    for (const auto& d : t["shape"]) shape += (shape.empty() ? "" : "x") + std::to_string(d.get<int64_t>());
    std::string where = t.contains("blob") ? "blob " + t["blob"].get<std::string>().substr(0, 12) : "tensors.bin (format 1)";
    rows.push_back({t["name"], t["dtype"], shape.empty() ? "scalar" : shape, Bytes(t["bytes"].get<double>()), where});
  }
  PrintTable({"TENSOR", "DTYPE", "SHAPE", "SIZE", "STORED"}, rows);
}

void PrintDiff(const json& r, bool all) {
  const json& s = r["summary"];
  std::cout << r["a"]["model"].get<std::string>() << " v" << r["a"]["version"] << " -> "
            << r["b"]["model"].get<std::string>() << " v" << r["b"]["version"] << ": " << s["changed"]
            << " changed, " << s["unchanged"] << " unchanged, " << s["added"] << " added, " << s["removed"]
            << " removed (" << Bytes(s["bytes_changed"].get<double>()) << " of "
            << Bytes(s["bytes_total"].get<double>()) << " differ)\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& t : r["tensors"]) {
    const std::string status = t["status"];
    if (status == "unchanged" && !all) continue;
    std::string detail = "-";
    if (t.contains("stats")) {
      const json& st = t["stats"];
      detail = Number(100 * st["changed_fraction"].get<double>()) + "% elems, max|d|=" +
               Number(st["max_abs_diff"].get<double>()) + ", rel_l2=" + Number(st["rel_l2"].get<double>());
    }
    rows.push_back({t["name"], status, t["dtype"], Bytes(t["bytes"].get<double>()), detail});
  }
  if (!rows.empty()) PrintTable({"TENSOR", "STATUS", "DTYPE", "SIZE", "CHANGE"}, rows);
}

void PrintLineage(const json& r) {
  auto line = [](const json& e) {
    std::string s = e["model"].get<std::string>() + " v" + std::to_string(e["version"].get<int64_t>());
    if (!e.value("exists", true)) return s + "  (deleted)";
    std::string job = e["job_id"];
    return s + "  job " + (job.empty() ? "-" : job) + " attempt " + std::to_string(e["attempt"].get<int64_t>()) +
           " step " + std::to_string(e["step"].get<int64_t>()) + "  data " +
           (e["data_fingerprint"].get<std::string>().empty() ? "-" : e["data_fingerprint"].get<std::string>()) +
           "  " + Metrics(e["metrics"]);
  };
  std::cout << line(r) << "\n";
  for (const auto& a : r["ancestors"]) std::cout << "  <- " << line(a) << "\n";
  if (r["ancestors"].empty()) std::cout << "  (no parent)\n";
}

int Fsck(Context& ctx, bool repair, bool as_json) {
  auto r = ctx.Call(kStorage, "fsck", {{"repair", repair}}, kBulkTimeout);
  if (!r.ok()) return Fail(r.status());
  if (as_json) {
    PrintJson(*r);
  } else {
    const json& j = *r;
    std::cout << "checked " << j["versions_checked"] << " versions, " << j["blobs_checked"] << " blobs, "
              << Bytes(j["bytes_checked"].get<double>()) << "\n";
    for (const auto& p : j["problems"]) {
      std::cout << "  " << p["kind"].get<std::string>() << "  " << p["path"].get<std::string>() << ": "
                << p["detail"].get<std::string>() << "\n";
    }
    for (const auto& a : j["repaired"]) std::cout << "  repaired: " << a.dump() << "\n";
    std::cout << (j["ok"].get<bool>() ? "ok" : (repair ? "problems remain" : "problems found; run with --repair"))
              << "\n";
  }
  return (*r)["ok"].get<bool>() ? 0 : 1;
}

int Export(Context& ctx, const std::string& target, const std::string& format, const std::string& out,
           bool all, bool as_json) {
  json body = RefBody(target);
  body["format"] = format;
  body["include"] = all ? "all" : "model";
  auto r = ctx.Call(kStorage, "export_version", body, kBulkTimeout);
  if (!r.ok()) return Fail(r.status());
  const auto& data = (*r)["data"].get_binary();
  Status s = WriteFileAtomic(out, std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
  if (!s.ok()) return Fail(s);
  json summary = {{"model", (*r)["model"]}, {"version", (*r)["version"]}, {"format", format},
                  {"tensors", (*r)["tensors"]}, {"bytes", data.size()}, {"path", out}};
  if (as_json) {
    PrintJson(summary);
  } else {
    std::cout << "wrote " << out << " (" << (*r)["model"].get<std::string>() << " v" << (*r)["version"] << ", "
              << (*r)["tensors"] << " tensors, " << Bytes(static_cast<double>(data.size())) << ")\n";
  }
  return 0;
}

int Import(Context& ctx, const std::string& model, const std::string& file, const std::string& format,
           int64_t step, bool as_json) {
  auto bytes = ReadFile(file);
  if (!bytes.ok()) return Fail(bytes.status());
  // A request over the storage's frame limit is dropped by ZeroMQ unread and
  // would only time out, so ask the service for its real limit first.
  auto ping = ctx.Call(kStorage, "ping", json::object(), Retrying(std::chrono::seconds(30)));
  if (!ping.ok()) return Fail(ping.status());
  if (Status s = CheckRequestFits(*ping, bytes->size() + kImportEnvelopeBytes, file); !s.ok()) return Fail(s);
  // One request id for this import, sent again unchanged on a retry: a
  // storage that committed the version and died before replying answers
  // the retry with that version instead of importing it twice.
  json body = {{"model", model}, {"format", format}, {"step", step},
               {"data", json::binary(std::vector<uint8_t>(bytes->begin(), bytes->end()))},
               {"meta", {{"source", "torch import"}, {"file", AbsolutePath(file, ".")}}},
               {kRequestIdField, NewRequestId()}};
  return Run(ctx, "import_version", body, as_json, [](const json& r) {
    std::cout << "imported as " << r["model"].get<std::string>() << " v" << r["version"] << " ("
              << Bytes(r["bytes"].get<double>()) << ", " << Bytes(r["bytes_written"].get<double>()) << " written)\n";
  }, Retrying(kBulkTimeout));
}

// `gantry ckpt optimize`: quantising needs LibTorch, which the CLI does not
// link, so it hands over to gantry-optimize (installed beside it) with the
// storage endpoint; that program's output and exit code are this command's.
int Optimize(Context& ctx, const std::string& version, bool int8, const std::string& images,
             const std::string& labels, bool as_json) {
  if (!int8) return Fail(Status::InvalidArgument("ckpt optimize: say which optimisation (--int8)"));
  auto storage = ctx.dir().Endpoint(kStorage, "api");
  if (!storage.ok()) return Fail(storage.status());
  // gantry-optimize finds the CURVE keys this command chose in $GANTRY_KEYS.
  auto keys = ctx.UseKeys(kStorage);
  if (!keys.ok()) return Fail(keys.status());
  if (!keys->empty()) ::setenv(kKeysEnv, keys->c_str(), 1);
  const std::string program = SelfDir() + "/gantry-optimize";
  std::vector<std::string> args = {program, "--storage", *storage, version, "--int8"};
  if (!images.empty()) args.insert(args.end(), {"--test-images", images});
  if (!labels.empty()) args.insert(args.end(), {"--test-labels", labels});
  if (as_json) args.push_back("--json");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  ::execv(program.c_str(), argv.data());
  return Fail(Status::Unavailable("ckpt optimize: cannot run " + program + ": " + std::strerror(errno) +
                                  " (it is built with LibTorch, beside gantry-serve)"));
}

}  // namespace

void AddCkptCommands(CLI::App& app, Context& ctx, Action& action) {
  auto* ckpt = app.add_subcommand("ckpt", "Checkpoint registry (versions are MODEL@REF: vN, an alias, or latest)");
  ckpt->require_subcommand(1);
  struct Opts {
    std::string a, b, c;
    std::string format = "torch";
    std::string metric;
    std::string mode = "min";
    int64_t n1 = -1, n2 = 0;
    bool flag1 = false, flag2 = false;
    bool as_json = false;
  };
  // Each command gets its own options; `bind` turns a body into the action.
  auto add = [&](CLI::App* parent, const std::string& name, const std::string& help) {
    auto o = std::make_shared<Opts>();
    auto* cmd = parent->add_subcommand(name, help);
    cmd->add_flag("--json", o->as_json, "Machine-readable output");
    return std::make_pair(cmd, o);
  };
  auto bind = [&action](CLI::App* cmd, std::function<int()> fn) {
    cmd->callback([&action, fn] { action = fn; });
  };

  {
    auto [cmd, o] = add(ckpt, "list", "List the versions of a model");
    cmd->add_option("model", o->a, "Model name (the job's checkpoint.model, default its name)")->required();
    bind(cmd, [&ctx, o] { return Run(ctx, "list_versions", {{"model", o->a}}, o->as_json, PrintList); });
  }
  {
    auto [cmd, o] = add(ckpt, "models", "List models that have checkpoints");
    bind(cmd, [&ctx, o] { return Run(ctx, "list_models", json::object(), o->as_json, PrintModels); });
  }
  {
    auto [cmd, o] = add(ckpt, "show", "Metadata and tensors of one version");
    cmd->add_option("version", o->a, "MODEL@REF (REF: vN, an alias, or latest)")->required();
    bind(cmd, [&ctx, o] { return Run(ctx, "show_version", RefBody(o->a), o->as_json, PrintShow); });
  }
  {
    auto [cmd, o] = add(ckpt, "diff", "Which tensors changed between two versions, and by how much");
    cmd->add_option("a", o->a, "MODEL@REF")->required();
    cmd->add_option("b", o->b, "MODEL@REF, or just REF of A's model")->required();
    cmd->add_flag("--all", o->flag1, "List unchanged tensors too");
    bind(cmd, [&ctx, o] {
      // B without '@' is a ref of A's model: `diff mnist@v3 v5`.
      std::string b = o->b.find('@') == std::string::npos ? SplitRef(o->a).first + "@" + o->b : o->b;
      bool all = o->flag1;
      return Run(ctx, "diff_versions", {{"a", RefBody(o->a)}, {"b", RefBody(b)}}, o->as_json,
                 [all](const json& r) { PrintDiff(r, all); }, kBulkTimeout);
    });
  }
  {
    auto [cmd, o] = add(ckpt, "lineage", "Job, attempt, step, data and parents of a version");
    cmd->add_option("version", o->a, "MODEL@REF")->required();
    bind(cmd, [&ctx, o] { return Run(ctx, "lineage", RefBody(o->a), o->as_json, PrintLineage); });
  }
  {
    auto* alias = ckpt->add_subcommand("alias", "Name a version (production, champion, ...)");
    alias->require_subcommand(1);
    auto [set, so] = add(alias, "set", "Point ALIAS at a version (moves it if it exists)");
    set->add_option("model", so->a, "Model name")->required();
    set->add_option("alias", so->b, "Alias name")->required();
    set->add_option("ref", so->c, "vN, another alias, or latest")->required();
    bind(set, [&ctx, so] {
      return Run(ctx, "set_alias", {{"model", so->a}, {"alias", so->b}, {"ref", so->c}}, so->as_json,
                 [](const json& r) {
                   std::cout << r["model"].get<std::string>() << "@" << r["alias"].get<std::string>() << " -> v"
                             << r["version"]
                             << (r["previous"].is_null() ? std::string()
                                                         : " (was v" + r["previous"].dump() + ")")
                             << "\n";
                 });
    });
    auto [rm, ro] = add(alias, "rm", "Remove an alias (the version stays)");
    rm->add_option("model", ro->a, "Model name")->required();
    rm->add_option("alias", ro->b, "Alias name")->required();
    bind(rm, [&ctx, ro] {
      return Run(ctx, "remove_alias", {{"model", ro->a}, {"alias", ro->b}}, ro->as_json, [](const json& r) {
        std::cout << "removed " << r["alias"].get<std::string>() << " (was v" << r["version"] << ")\n";
      });
    });
  }
  {
    auto [cmd, o] = add(ckpt, "tag", "Tag a version; --protect keeps it from retention");
    cmd->add_option("version", o->a, "MODEL@REF")->required();
    cmd->add_option("tag", o->b, "Tag name")->required();
    cmd->add_flag("--protect", o->flag1, "Retention and gc never delete a protected version");
    cmd->add_flag("--rm", o->flag2, "Remove the tag instead");
    bind(cmd, [&ctx, o] {
      json body = RefBody(o->a);
      body["tag"] = o->b;
      if (!o->flag2) body["protect"] = o->flag1;
      return Run(ctx, o->flag2 ? "untag_version" : "tag_version", body, o->as_json, [o](const json& r) {
        std::cout << (o->flag2 ? "untagged " : "tagged ") << r["model"].get<std::string>() << " v" << r["version"]
                  << " #" << r["tag"].get<std::string>() << (r.value("protect", false) ? " (protected)" : "")
                  << "\n";
      });
    });
  }
  {
    auto [cmd, o] = add(ckpt, "rm", "Delete a version (two-phase; shared blobs stay while used)");
    cmd->add_option("version", o->a, "MODEL@REF (REF required: vN or an alias)")->required();
    cmd->add_flag("--force", o->flag1, "Delete even an aliased or protected version");
    bind(cmd, [&ctx, o] {
      if (o->a.find('@') == std::string::npos) {
        return Fail(Status::InvalidArgument("name the version to delete: MODEL@vN"));
      }
      json body = RefBody(o->a);
      body["force"] = o->flag1;
      return Run(ctx, "delete_version", body, o->as_json, [](const json& r) {
        std::cout << "deleted " << r["model"].get<std::string>() << " v" << r["version"] << " ("
                  << Bytes(r["bytes_freed"].get<double>()) << " freed)\n";
      });
    });
  }
  {
    auto [cmd, o] = add(ckpt, "retention", "Show or set a model's retention policy (applied at once)");
    cmd->add_option("model", o->a, "Model name")->required();
    cmd->add_option("--keep-latest", o->n1, "Keep the newest N versions (>= 1)");
    cmd->add_option("--keep-best", o->n2, "Also keep the best K by --metric");
    cmd->add_option("--metric", o->metric, "Metric that ranks versions for --keep-best (e.g. val_loss)");
    cmd->add_option("--mode", o->mode, "min or max: which end of --metric is best")
        ->check(CLI::IsMember({"min", "max"}));
    cmd->add_flag("--keep-all", o->flag1, "Remove the policy: keep every version");
    bind(cmd, [&ctx, o] {
      auto print = [](const json& r) {
        if (r["retention"].is_null()) {
          std::cout << r["model"].get<std::string>() << ": no retention policy (every version is kept)\n";
        } else {
          const json& p = r["retention"];
          std::cout << r["model"].get<std::string>() << ": keep latest " << p["keep_latest"];
          if (p["keep_best"].get<int64_t>() > 0) {
            std::cout << " and best " << p["keep_best"] << " by " << p["metric"].get<std::string>() << " ("
                      << p["mode"].get<std::string>() << ")";
          }
          std::cout << ", plus aliased and protected versions\n";
        }
        if (r.contains("expired") && !r["expired"].empty()) std::cout << "deleted versions " << r["expired"] << "\n";
      };
      if (o->flag1) return Run(ctx, "set_retention", {{"model", o->a}, {"keep_all", true}}, o->as_json, print);
      if (o->n1 < 0) return Run(ctx, "get_retention", {{"model", o->a}}, o->as_json, print);
      return Run(ctx, "set_retention",
                 {{"model", o->a}, {"keep_latest", o->n1}, {"keep_best", o->n2}, {"metric", o->metric},
                  {"mode", o->mode}},
                 o->as_json, print);
    });
  }
  {
    auto [cmd, o] = add(ckpt, "gc", "Apply retention, finish interrupted deletes, remove unreferenced data");
    cmd->add_option("model", o->a, "Only this model's retention (default: every model with a policy)");
    cmd->add_flag("--dry-run", o->flag1, "Report what would be deleted");
    bind(cmd, [&ctx, o] {
      return Run(ctx, "gc", {{"model", o->a}, {"dry_run", o->flag1}}, o->as_json, [o](const json& r) {
        for (const auto& e : r["expired"]) {
          std::cout << (o->flag1 ? "would delete " : "deleted ") << e["model"].get<std::string>() << " "
                    << e["versions"] << "\n";
        }
        for (const auto& p : r["swept"]["removed"]) {
          std::cout << (o->flag1 ? "would remove " : "removed ") << p.get<std::string>() << "\n";
        }
        if (o->flag1) {
          std::cout << "dry run: nothing deleted\n";
        } else {
          std::cout << Bytes(r["bytes_freed"].get<double>()) << " freed\n";
        }
      }, kBulkTimeout);
    });
  }
  {
    auto [cmd, o] = add(ckpt, "fsck", "Check every version's files against checksums and the index");
    cmd->add_flag("--repair", o->flag1, "Finish interrupted deletes, drop damaged versions, remove debris");
    bind(cmd, [&ctx, o] { return Fsck(ctx, o->flag1, o->as_json); });
  }
  {
    auto [cmd, o] = add(ckpt, "export", "Write a version as a file Python's torch.load reads as a state dict");
    cmd->add_option("version", o->a, "MODEL@REF")->required();
    cmd->add_option("--format", o->format, "Output format")->check(CLI::IsMember({"torch"}));
    cmd->add_option("-o,--output", o->b, "Output file (e.g. model.pt)")->required();
    cmd->add_flag("--all", o->flag1, "Include optimizer/ and trainer/ tensors, not only the model's");
    bind(cmd, [&ctx, o] { return Export(ctx, o->a, o->format, o->b, o->flag1, o->as_json); });
  }
  {
    auto [cmd, o] = add(ckpt, "optimize", "Make an optimised version (int8) with its test accuracy beside the parent's");
    cmd->add_option("version", o->a, "MODEL@REF (a builtin mlp)")->required();
    cmd->add_flag("--int8", o->flag1, "Dynamic int8 quantisation of the Linear layers (LibTorch quantized ops)");
    cmd->add_option("--test-images", o->b, "IDX test images for the accuracy (default: Fashion-MNIST's)");
    cmd->add_option("--test-labels", o->c, "IDX test labels");
    bind(cmd, [&ctx, o] { return Optimize(ctx, o->a, o->flag1, o->b, o->c, o->as_json); });
  }
  {
    auto [cmd, o] = add(ckpt, "import", "Add a state dict saved by Python's torch.save as a new version");
    cmd->add_option("model", o->a, "Model name to import into")->required();
    cmd->add_option("file", o->b, "File written by torch.save(model.state_dict(), path)")->required();
    cmd->add_option("--format", o->format, "Input format")->check(CLI::IsMember({"torch"}));
    cmd->add_option("--step", o->n2, "Training step to record (default 0)");
    bind(cmd, [&ctx, o] { return Import(ctx, o->a, o->b, o->format, o->n2, o->as_json); });
  }
}

}  // namespace gantry::cli
