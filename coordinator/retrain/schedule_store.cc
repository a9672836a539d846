#include "coordinator/retrain/schedule_store.h"

#include <chrono>

namespace gantry::coordinator {
namespace {

json TriggersToJson(const std::vector<Trigger>& triggers) {
  json out = json::array();
  for (const Trigger& t : triggers) {
    const double at = std::chrono::duration<double>(t.at.time_since_epoch()).count();
    out.push_back({{"kind", TriggerKindName(t.kind)}, {"detail", t.detail}, {"at", at}});
  }
  return out;
}

Result<std::vector<Trigger>> TriggersFromJson(const json& j) {
  std::vector<Trigger> out;
  if (!j.is_array()) return Status::Corruption("schedule_runs.triggers is not a list");
  for (const json& t : j) {
    Trigger tr;
    const std::string kind = t.value("kind", "");
    bool known = false;
    for (TriggerKind k : {TriggerKind::kManual, TriggerKind::kCron, TriggerKind::kNewData, TriggerKind::kDrift,
                          TriggerKind::kMetric}) {
      if (kind == TriggerKindName(k)) {
        tr.kind = k;
        known = true;
      }
    }
    if (!known) return Status::Corruption("schedule_runs.triggers: unknown kind '" + kind + "'");
    tr.detail = t.value("detail", "");
    tr.at = std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
        std::chrono::duration<double>(t.value("at", 0.0))));
    out.push_back(std::move(tr));
  }
  return out;
}

template <typename T>
void PutOptional(json& j, const char* key, const std::optional<T>& v) {
  if (v) j[key] = *v;
}

template <typename T>
std::optional<T> GetOptional(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return it->get<T>();
}

json DecisionToJson(const RunDecision& d) {
  json j = {{"promote", d.promote},
            {"reason", d.reason},
            {"metric", d.metric},
            {"data_fingerprint", d.data_fingerprint}};
  PutOptional(j, "champion_version", d.champion_version);
  PutOptional(j, "challenger_version", d.challenger_version);
  PutOptional(j, "champion_value", d.champion_value);
  PutOptional(j, "challenger_value", d.challenger_value);
  return j;
}

RunDecision DecisionFromJson(const json& j) {
  RunDecision d;
  d.promote = j.value("promote", false);
  d.reason = j.value("reason", "");
  d.metric = j.value("metric", "");
  d.data_fingerprint = j.value("data_fingerprint", "");
  d.champion_version = GetOptional<int64_t>(j, "champion_version");
  d.challenger_version = GetOptional<int64_t>(j, "challenger_version");
  d.champion_value = GetOptional<double>(j, "champion_value");
  d.challenger_value = GetOptional<double>(j, "challenger_value");
  return d;
}

Result<json> ParseColumn(const std::string& text, const char* column) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Corruption(std::string("stored ") + column + " is not JSON");
  return j;
}

Status NotFoundUnlessChanged(sql::Db& db, const std::string& name) {
  if (db.Changes() == 0) return Status::NotFound("no schedule named '" + name + "' (see gantry schedule list)");
  return Status::Ok();
}

}  // namespace

std::vector<std::string> ScheduleMigrations() {
  return {R"sql(
CREATE TABLE schedules (
  name TEXT PRIMARY KEY,
  spec TEXT NOT NULL,
  paused INTEGER NOT NULL DEFAULT 0,
  created_at REAL NOT NULL,
  last_cron_at REAL
);
CREATE TABLE schedule_runs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  schedule TEXT NOT NULL,
  job_id TEXT NOT NULL,
  state TEXT NOT NULL,
  triggers TEXT NOT NULL,
  files TEXT NOT NULL,
  started_at REAL NOT NULL,
  finished_at REAL,
  decision TEXT,
  error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX schedule_runs_by_schedule ON schedule_runs(schedule, seq);
CREATE TABLE schedule_files (
  schedule TEXT NOT NULL,
  name TEXT NOT NULL,
  run_seq INTEGER NOT NULL,
  PRIMARY KEY (schedule, name)
);
)sql"};
}

const char* RunStateName(RunState s) {
  switch (s) {
    case RunState::kRunning: return "running";
    case RunState::kPromoted: return "promoted";
    case RunState::kRejected: return "rejected";
    case RunState::kFailed: return "failed";
  }
  return "unknown";
}

Status ScheduleStore::Add(const ScheduleSpec& spec, double now) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_->Prepare("INSERT OR IGNORE INTO schedules (name, spec, created_at) VALUES (?, ?, ?)"));
  q.Bind(1, spec.name).Bind(2, spec.ToJson().dump()).Bind(3, now);
  GANTRY_RETURN_IF_ERROR(q.Run());
  if (db_->Changes() == 0) {
    return Status::AlreadyExists("a schedule named '" + spec.name +
                                 "' exists: remove it first (gantry schedule rm " + spec.name + ")");
  }
  return Status::Ok();
}

Status ScheduleStore::Remove(const std::string& name) {
  sql::Transaction tx(*db_);
  GANTRY_RETURN_IF_ERROR(tx.begin_status());
  GANTRY_ASSIGN_OR_RETURN(auto q, db_->Prepare("DELETE FROM schedules WHERE name = ?"));
  q.Bind(1, name);
  GANTRY_RETURN_IF_ERROR(q.Run());
  GANTRY_RETURN_IF_ERROR(NotFoundUnlessChanged(*db_, name));
  // Runs stay as history; the used-file record goes with the schedule, so a
  // schedule added again under the name starts from the directory as it is.
  GANTRY_ASSIGN_OR_RETURN(auto f, db_->Prepare("DELETE FROM schedule_files WHERE schedule = ?"));
  f.Bind(1, name);
  GANTRY_RETURN_IF_ERROR(f.Run());
  return tx.Commit();
}

Status ScheduleStore::SetPaused(const std::string& name, bool paused) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_->Prepare("UPDATE schedules SET paused = ? WHERE name = ?"));
  q.Bind(1, paused ? 1 : 0).Bind(2, name);
  GANTRY_RETURN_IF_ERROR(q.Run());
  return NotFoundUnlessChanged(*db_, name);
}

Status ScheduleStore::SetLastCron(const std::string& name, double fire_time) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_->Prepare("UPDATE schedules SET last_cron_at = ? WHERE name = ?"));
  q.Bind(1, fire_time).Bind(2, name);
  GANTRY_RETURN_IF_ERROR(q.Run());
  return NotFoundUnlessChanged(*db_, name);
}

Result<std::vector<ScheduleRecord>> ScheduleStore::List() {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_->Prepare(
      "SELECT name, spec, paused, created_at, last_cron_at FROM schedules ORDER BY name"));
  std::vector<ScheduleRecord> out;
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    GANTRY_ASSIGN_OR_RETURN(json spec_json, ParseColumn(q.ColumnText(1), "schedule spec"));
    auto spec = ScheduleSpec::Parse(spec_json);
    if (!spec.ok()) {
      return Status::Corruption("stored schedule '" + q.ColumnText(0) + "' no longer parses: " +
                                spec.status().message());
    }
    ScheduleRecord r;
    r.spec = std::move(spec).value();
    r.paused = q.ColumnInt(2) != 0;
    r.created_at = q.ColumnDouble(3);
    if (!q.ColumnIsNull(4)) r.last_cron_at = q.ColumnDouble(4);
    out.push_back(std::move(r));
  }
  return out;
}

Result<ScheduleRecord> ScheduleStore::Get(const std::string& name) {
  GANTRY_ASSIGN_OR_RETURN(auto all, List());
  for (auto& r : all) {
    if (r.spec.name == name) return std::move(r);
  }
  return Status::NotFound("no schedule named '" + name + "' (see gantry schedule list)");
}

Result<int64_t> ScheduleStore::StartRun(const std::string& schedule, const std::string& job_id,
                                        const std::vector<Trigger>& triggers,
                                        const std::vector<std::string>& files, double now) {
  sql::Transaction tx(*db_);
  GANTRY_RETURN_IF_ERROR(tx.begin_status());
  GANTRY_ASSIGN_OR_RETURN(auto q, db_->Prepare(
      "INSERT INTO schedule_runs (schedule, job_id, state, triggers, files, started_at) VALUES (?, ?, ?, ?, ?, ?)"));
  q.Bind(1, schedule).Bind(2, job_id).Bind(3, RunStateName(RunState::kRunning));
  q.Bind(4, TriggersToJson(triggers).dump()).Bind(5, json(files).dump()).Bind(6, now);
  GANTRY_RETURN_IF_ERROR(q.Run());
  const int64_t seq = db_->LastInsertRowId();
  for (const std::string& f : files) {
    GANTRY_ASSIGN_OR_RETURN(auto fq, db_->Prepare(
        "INSERT INTO schedule_files (schedule, name, run_seq) VALUES (?, ?, ?)"));
    fq.Bind(1, schedule).Bind(2, f).Bind(3, seq);
    Status st = fq.Run();
    if (!st.ok()) return st.WithContext("file " + f + " is already used by an earlier run");
  }
  GANTRY_RETURN_IF_ERROR(tx.Commit());
  return seq;
}

Status ScheduleStore::FinishRun(int64_t seq, RunState state, const std::optional<RunDecision>& decision,
                                const std::string& error, double now) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_->Prepare(
      "UPDATE schedule_runs SET state = ?, decision = ?, error = ?, finished_at = ? WHERE seq = ?"));
  q.Bind(1, RunStateName(state));
  if (decision) {
    q.Bind(2, DecisionToJson(*decision).dump());
  } else {
    q.BindNull(2);
  }
  q.Bind(3, error).Bind(4, now).Bind(5, seq);
  GANTRY_RETURN_IF_ERROR(q.Run());
  if (db_->Changes() == 0) return Status::NotFound("no schedule run " + std::to_string(seq));
  return Status::Ok();
}

Result<std::vector<RunRecord>> ScheduleStore::QueryRuns(const std::string& where, const std::string& schedule) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_->Prepare(
      "SELECT seq, schedule, job_id, state, triggers, files, started_at, finished_at, decision, error "
      "FROM schedule_runs WHERE " + where + " ORDER BY seq"));
  q.Bind(1, schedule);
  std::vector<RunRecord> out;
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    RunRecord r;
    r.seq = q.ColumnInt(0);
    r.schedule = q.ColumnText(1);
    r.job_id = q.ColumnText(2);
    const std::string state = q.ColumnText(3);
    bool known = false;
    for (RunState s : {RunState::kRunning, RunState::kPromoted, RunState::kRejected, RunState::kFailed}) {
      if (state == RunStateName(s)) {
        r.state = s;
        known = true;
      }
    }
    if (!known) return Status::Corruption("schedule run " + std::to_string(r.seq) + " has state '" + state + "'");
    GANTRY_ASSIGN_OR_RETURN(json triggers, ParseColumn(q.ColumnText(4), "run triggers"));
    GANTRY_ASSIGN_OR_RETURN(r.triggers, TriggersFromJson(triggers));
    GANTRY_ASSIGN_OR_RETURN(json files, ParseColumn(q.ColumnText(5), "run files"));
    if (!files.is_array()) return Status::Corruption("schedule run files are not a list");
    for (const json& f : files) r.files.push_back(f.get<std::string>());
    r.started_at = q.ColumnDouble(6);
    if (!q.ColumnIsNull(7)) r.finished_at = q.ColumnDouble(7);
    if (!q.ColumnIsNull(8)) {
      GANTRY_ASSIGN_OR_RETURN(json d, ParseColumn(q.ColumnText(8), "run decision"));
      r.decision = DecisionFromJson(d);
    }
    r.error = q.ColumnText(9);
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::vector<RunRecord>> ScheduleStore::History(const std::string& schedule) {
  return QueryRuns("schedule = ?", schedule);
}

Result<std::optional<RunRecord>> ScheduleStore::ActiveRun(const std::string& schedule) {
  GANTRY_ASSIGN_OR_RETURN(auto runs, QueryRuns("schedule = ? AND state = 'running'", schedule));
  if (runs.empty()) return std::optional<RunRecord>();
  return std::optional<RunRecord>(std::move(runs.back()));
}

Result<std::set<std::string>> ScheduleStore::UsedFiles(const std::string& schedule) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT name FROM schedule_files WHERE schedule = ?"));
  q.Bind(1, schedule);
  std::set<std::string> out;
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.insert(q.ColumnText(0));
  }
  return out;
}

}  // namespace gantry::coordinator
