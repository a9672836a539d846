// Registry: aliases, tags, deletion, retention and garbage collection (see
// registry.h and collector.h).
#include "common/ids.h"
#include "storage/collector.h"
#include "storage/registry.h"

namespace gantry::storage {
namespace {

// Aliases share the ref namespace with "latest" and "v<N>", so those
// spellings cannot be aliases.
Status ValidateAlias(const std::string& alias) {
  GANTRY_RETURN_IF_ERROR(ValidateName(alias, "alias"));
  bool versionish = alias == "latest";
  size_t start = alias[0] == 'v' ? 1 : 0;
  if (alias.size() > start) {
    bool digits = true;
    for (size_t i = start; i < alias.size(); ++i) digits = digits && alias[i] >= '0' && alias[i] <= '9';
    versionish = versionish || digits;
  }
  if (versionish) {
    return Status::InvalidArgument("alias '" + alias + "' would read as a version ref; pick a name that is "
                                   "not 'latest', 'vN' or a number");
  }
  return Status::Ok();
}

Status ValidatePolicy(const RetentionPolicy& p) {
  if (p.keep_latest < 1) {
    return Status::InvalidArgument("retention: keep_latest must be >= 1 (got " + std::to_string(p.keep_latest) +
                                   "); the newest version is what a job resumes from");
  }
  if (p.keep_best < 0) {
    return Status::InvalidArgument("retention: keep_best must be >= 0 (got " + std::to_string(p.keep_best) + ")");
  }
  if (p.keep_best > 0 && p.metric.empty()) {
    return Status::InvalidArgument("retention: keep_best needs a metric (e.g. metric: val_loss, mode: min)");
  }
  if (p.metric.size() > 128) return Status::InvalidArgument("retention: metric name is longer than 128 characters");
  for (unsigned char c : p.metric) {
    if (c < 0x20 || c == 0x7f) return Status::InvalidArgument("retention: metric name holds a control character");
  }
  if (p.mode != "min" && p.mode != "max") {
    return Status::InvalidArgument("retention: mode must be 'min' or 'max' (got '" + p.mode + "')");
  }
  return Status::Ok();
}

}  // namespace

Result<AliasChange> Registry::SetAlias(const std::string& model, const std::string& alias, const std::string& ref) {
  GANTRY_RETURN_IF_ERROR(ValidateName(model, "model"));
  GANTRY_RETURN_IF_ERROR(ValidateAlias(alias));
  GANTRY_ASSIGN_OR_RETURN(int64_t version, Resolve(model, ref));
  GANTRY_ASSIGN_OR_RETURN(auto previous, index_.AliasVersion(model, alias));
  GANTRY_RETURN_IF_ERROR(index_.SetAlias(model, alias, version, clock_->WallSeconds()));
  return AliasChange{model, alias, version, previous};
}

Result<AliasChange> Registry::RemoveAlias(const std::string& model, const std::string& alias) {
  GANTRY_RETURN_IF_ERROR(ValidateName(model, "model"));
  GANTRY_RETURN_IF_ERROR(ValidateName(alias, "alias"));
  GANTRY_ASSIGN_OR_RETURN(auto version, index_.RemoveAlias(model, alias));
  if (!version) return Status::NotFound("model '" + model + "' has no alias '" + alias + "'");
  return AliasChange{model, alias, *version, std::nullopt};
}

Result<TagChange> Registry::Tag(const std::string& model, const std::string& ref, const std::string& tag,
                                bool protect) {
  GANTRY_RETURN_IF_ERROR(ValidateName(tag, "tag"));
  GANTRY_ASSIGN_OR_RETURN(int64_t version, Resolve(model, ref));
  GANTRY_RETURN_IF_ERROR(index_.AddTag(model, version, tag, protect, clock_->WallSeconds()));
  return TagChange{model, version, tag, protect};
}

Result<TagChange> Registry::Untag(const std::string& model, const std::string& ref, const std::string& tag) {
  GANTRY_RETURN_IF_ERROR(ValidateName(tag, "tag"));
  GANTRY_ASSIGN_OR_RETURN(int64_t version, Resolve(model, ref));
  GANTRY_ASSIGN_OR_RETURN(bool removed, index_.RemoveTag(model, version, tag));
  if (!removed) {
    return Status::NotFound(model + " v" + std::to_string(version) + " has no tag '" + tag + "'");
  }
  return TagChange{model, version, tag, false};
}

Result<DeleteResult> Registry::Delete(const std::string& model, const std::string& ref, bool force) {
  GANTRY_ASSIGN_OR_RETURN(int64_t version, Resolve(model, ref));
  GANTRY_ASSIGN_OR_RETURN(VersionRow row, RequireVersion(model, version));
  GANTRY_ASSIGN_OR_RETURN(bool is_protected, index_.IsProtected(model, version));
  if (is_protected && !force) {
    return Status::FailedPrecondition(model + " v" + std::to_string(version) +
                                      " has an alias or a protecting tag; move the alias or untag it first, "
                                      "or delete with --force");
  }
  Collector gc(root_, index_, blobs_, *clock_);
  {
    sql::Transaction tx(index_.db());
    GANTRY_RETURN_IF_ERROR(tx.begin_status());
    GANTRY_RETURN_IF_ERROR(gc.UnlinkVersion(row));
    GANTRY_RETURN_IF_ERROR(gc.UnlinkUnreferencedBlobs(nullptr, nullptr));
    GANTRY_RETURN_IF_ERROR(tx.Commit());
  }
  uint64_t freed = 0;
  GANTRY_RETURN_IF_ERROR(gc.FinishPendingDeletes(&freed).status());
  return DeleteResult{model, version, freed};
}

Result<RetentionInfo> Registry::SetRetention(const std::string& model, const std::optional<RetentionPolicy>& policy) {
  GANTRY_RETURN_IF_ERROR(ValidateName(model, "model"));
  if (policy) GANTRY_RETURN_IF_ERROR(ValidatePolicy(*policy));
  {
    sql::Transaction tx(index_.db());
    GANTRY_RETURN_IF_ERROR(tx.begin_status());
    if (policy) {
      GANTRY_RETURN_IF_ERROR(index_.EnsureModel(model, clock_->WallSeconds()));
      GANTRY_RETURN_IF_ERROR(index_.SetRetention(model, *policy, clock_->WallSeconds()));
    } else {
      GANTRY_RETURN_IF_ERROR(index_.ClearRetention(model));
    }
    GANTRY_RETURN_IF_ERROR(tx.Commit());
  }
  GANTRY_ASSIGN_OR_RETURN(auto expired, ApplyRetentionAfterSave(model));
  return RetentionInfo{model, policy, std::move(expired)};
}

Result<RetentionInfo> Registry::GetRetention(const std::string& model) {
  GANTRY_RETURN_IF_ERROR(ValidateName(model, "model"));
  GANTRY_ASSIGN_OR_RETURN(auto policy, index_.GetRetention(model));
  return RetentionInfo{model, std::move(policy), {}};
}

Result<GcReport> Registry::CollectGarbage(const std::string& model, bool dry_run) {
  std::vector<std::string> models;
  if (!model.empty()) {
    GANTRY_RETURN_IF_ERROR(ValidateName(model, "model"));
    models.push_back(model);
  } else {
    GANTRY_ASSIGN_OR_RETURN(models, index_.ModelsWithRetention());
  }
  Collector gc(root_, index_, blobs_, *clock_);
  GcReport report;
  report.dry_run = dry_run;
  for (const auto& m : models) {
    GANTRY_ASSIGN_OR_RETURN(auto versions, gc.ApplyRetention(m, dry_run));
    if (!versions.empty()) report.expired.push_back({m, std::move(versions)});
  }
  if (!dry_run) {
    // Blobs orphaned by anything else (an older binary, a manual edit).
    {
      sql::Transaction tx(index_.db());
      GANTRY_RETURN_IF_ERROR(tx.begin_status());
      GANTRY_RETURN_IF_ERROR(gc.UnlinkUnreferencedBlobs(nullptr, nullptr));
      GANTRY_RETURN_IF_ERROR(tx.Commit());
    }
    GANTRY_ASSIGN_OR_RETURN(report.packs_compacted, gc.CompactPacks(options_.compact_below_live_fraction));
    GANTRY_ASSIGN_OR_RETURN(report.paths_deleted, gc.FinishPendingDeletes(&report.bytes_freed));
  }
  GANTRY_ASSIGN_OR_RETURN(report.swept, gc.Sweep(dry_run));
  return report;
}

}  // namespace gantry::storage
