#include "monitor/alerts/alert_store.h"

#include <cmath>
#include <limits>

#include "common/protocol.h"

namespace gantry::monitor::alerts {
namespace {

constexpr const char* kComponent = "alerts";

const std::vector<std::string> kMigrations = {
    R"sql(
CREATE TABLE alert_instances(
  scope TEXT NOT NULL,
  rule TEXT NOT NULL,
  job TEXT NOT NULL,
  rank INTEGER NOT NULL,
  kind TEXT NOT NULL,
  state TEXT NOT NULL,
  since REAL NOT NULL,
  active_since REAL NOT NULL,
  value REAL,
  why TEXT NOT NULL,
  severity TEXT NOT NULL,
  action TEXT NOT NULL,
  webhook TEXT NOT NULL,
  labels TEXT NOT NULL,
  annotations TEXT NOT NULL,
  condition INTEGER NOT NULL,
  PRIMARY KEY(scope, rule, job, rank)
);
CREATE TABLE alert_events(
  id INTEGER PRIMARY KEY,
  scope TEXT NOT NULL,
  rule TEXT NOT NULL,
  job TEXT NOT NULL,
  rank INTEGER NOT NULL,
  from_state TEXT NOT NULL,
  to_state TEXT NOT NULL,
  time REAL NOT NULL,
  value REAL,
  why TEXT NOT NULL,
  action TEXT NOT NULL
);
CREATE INDEX alert_events_job ON alert_events(job, time);
)sql",
};

// Db::Migrate keyed by a component name instead of PRAGMA user_version,
// which the file's other owner (MetricsStore) uses.
Status MigrateComponent(sql::Db& db, const std::string& component, const std::vector<std::string>& migrations) {
  GANTRY_RETURN_IF_ERROR(db.Exec(
      "CREATE TABLE IF NOT EXISTS schema_components(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"));
  GANTRY_ASSIGN_OR_RETURN(auto q, db.Prepare("SELECT version FROM schema_components WHERE component = ?1"));
  q.Bind(1, component);
  GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
  int64_t version = row ? q.ColumnInt(0) : 0;
  if (version > static_cast<int64_t>(migrations.size())) {
    return Status::FailedPrecondition(component + " schema version " + std::to_string(version) +
                                      " is newer than this binary knows (" + std::to_string(migrations.size()) +
                                      "); upgrade Gantry");
  }
  for (size_t i = static_cast<size_t>(version); i < migrations.size(); ++i) {
    sql::Transaction tx(db);
    GANTRY_RETURN_IF_ERROR(tx.begin_status());
    GANTRY_RETURN_IF_ERROR(db.Exec(migrations[i]));
    GANTRY_ASSIGN_OR_RETURN(auto up, db.Prepare(
        "INSERT INTO schema_components(component, version) VALUES(?1, ?2)"
        " ON CONFLICT(component) DO UPDATE SET version = excluded.version"));
    up.Bind(1, component).Bind(2, static_cast<int64_t>(i + 1));
    GANTRY_RETURN_IF_ERROR(up.Run());
    GANTRY_RETURN_IF_ERROR(tx.Commit());
  }
  return Status::Ok();
}

void BindValue(sql::Statement& s, int i, double v) {
  if (std::isnan(v)) s.BindNull(i);
  else s.Bind(i, v);
}

double ColumnValue(const sql::Statement& s, int i) {
  return s.ColumnIsNull(i) ? std::numeric_limits<double>::quiet_NaN() : s.ColumnDouble(i);
}

std::string MapToJson(const std::map<std::string, std::string>& m) { return json(m).dump(); }

std::map<std::string, std::string> MapFromJson(const std::string& text) {
  std::map<std::string, std::string> out;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it->is_string()) out[it.key()] = it->get<std::string>();
  }
  return out;
}

}  // namespace

Result<AlertStore> AlertStore::Open(const std::string& path) {
  GANTRY_ASSIGN_OR_RETURN(sql::Db db, sql::Db::Open(path));
  GANTRY_RETURN_IF_ERROR(MigrateComponent(db, kComponent, kMigrations).WithContext(path));
  return AlertStore(std::move(db));
}

Status AlertStore::Record(const std::vector<Transition>& transitions) {
  if (transitions.empty()) return Status::Ok();
  sql::Transaction tx(db_);
  GANTRY_RETURN_IF_ERROR(tx.begin_status());
  GANTRY_ASSIGN_OR_RETURN(auto ev, db_.Prepare(
      "INSERT INTO alert_events(scope, rule, job, rank, from_state, to_state, time, value, why, action)"
      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"));
  GANTRY_ASSIGN_OR_RETURN(auto up, db_.Prepare(
      "INSERT OR REPLACE INTO alert_instances(scope, rule, job, rank, kind, state, since, active_since, value,"
      " why, severity, action, webhook, labels, annotations, condition)"
      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"));
  GANTRY_ASSIGN_OR_RETURN(auto del, db_.Prepare(
      "DELETE FROM alert_instances WHERE scope = ?1 AND rule = ?2 AND job = ?3 AND rank = ?4"));
  for (const Transition& t : transitions) {
    const AlertInstance& a = t.alert;
    const char* scope = ScopeName(a.key.scope);
    ev.Bind(1, scope).Bind(2, a.key.rule).Bind(3, a.key.job).Bind(4, a.key.rank);
    ev.Bind(5, StateName(t.from)).Bind(6, StateName(t.to)).Bind(7, t.time);
    BindValue(ev, 8, a.value);
    ev.Bind(9, a.why).Bind(10, ActionName(t.action));
    GANTRY_RETURN_IF_ERROR(ev.Run());
    GANTRY_RETURN_IF_ERROR(ev.Reset());
    if (t.to == AlertState::kInactive) {
      del.Bind(1, scope).Bind(2, a.key.rule).Bind(3, a.key.job).Bind(4, a.key.rank);
      GANTRY_RETURN_IF_ERROR(del.Run());
      GANTRY_RETURN_IF_ERROR(del.Reset());
      continue;
    }
    up.Bind(1, scope).Bind(2, a.key.rule).Bind(3, a.key.job).Bind(4, a.key.rank);
    up.Bind(5, KindName(a.kind)).Bind(6, StateName(a.state)).Bind(7, a.since).Bind(8, a.active_since);
    BindValue(up, 9, a.value);
    up.Bind(10, a.why).Bind(11, a.severity).Bind(12, ActionName(a.action)).Bind(13, a.webhook);
    up.Bind(14, MapToJson(a.labels)).Bind(15, MapToJson(a.annotations)).Bind(16, a.condition ? 1 : 0);
    GANTRY_RETURN_IF_ERROR(up.Run());
    GANTRY_RETURN_IF_ERROR(up.Reset());
  }
  return tx.Commit();
}

Result<std::vector<AlertInstance>> AlertStore::Load() {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "SELECT scope, rule, job, rank, kind, state, since, active_since, value, why, severity, action, webhook,"
      " labels, annotations, condition FROM alert_instances ORDER BY since"));
  std::vector<AlertInstance> out;
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    AlertInstance a;
    a.key.scope = q.ColumnText(0) == "job" ? RuleScope::kJob : RuleScope::kCluster;
    a.key.rule = q.ColumnText(1);
    a.key.job = q.ColumnText(2);
    a.key.rank = q.ColumnInt(3);
    auto kind = KindFromName(q.ColumnText(4));
    auto state = StateFromName(q.ColumnText(5));
    if (!kind || !state) {
      return Status::Corruption("alert_instances row " + a.key.ToString() + " has kind '" + q.ColumnText(4) +
                                "' state '" + q.ColumnText(5) + "'; delete the row or restore the database");
    }
    a.kind = *kind;
    a.state = *state;
    a.since = q.ColumnDouble(6);
    a.active_since = q.ColumnDouble(7);
    a.value = ColumnValue(q, 8);
    a.why = q.ColumnText(9);
    a.severity = q.ColumnText(10);
    a.action = q.ColumnText(11) == "cancel" ? Action::kCancel : Action::kNone;
    a.webhook = q.ColumnText(12);
    a.labels = MapFromJson(q.ColumnText(13));
    a.annotations = MapFromJson(q.ColumnText(14));
    a.condition = q.ColumnInt(15) != 0;
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::vector<Transition>> AlertStore::History(const std::string& job, int64_t limit) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "SELECT scope, rule, job, rank, from_state, to_state, time, value, why, action FROM alert_events"
      " WHERE ?1 = '' OR job = ?1 ORDER BY time DESC, id DESC LIMIT ?2"));
  q.Bind(1, job).Bind(2, limit);
  std::vector<Transition> out;
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    Transition t;
    t.alert.key.scope = q.ColumnText(0) == "job" ? RuleScope::kJob : RuleScope::kCluster;
    t.alert.key.rule = q.ColumnText(1);
    t.alert.key.job = q.ColumnText(2);
    t.alert.key.rank = q.ColumnInt(3);
    t.from = StateFromName(q.ColumnText(4)).value_or(AlertState::kInactive);
    t.to = StateFromName(q.ColumnText(5)).value_or(AlertState::kInactive);
    t.alert.state = t.to;
    t.time = q.ColumnDouble(6);
    t.alert.value = ColumnValue(q, 7);
    t.alert.why = q.ColumnText(8);
    t.action = q.ColumnText(9) == "cancel" ? Action::kCancel : Action::kNone;
    out.push_back(std::move(t));
  }
  return out;
}

Status AlertStore::PruneResolved(double before) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("DELETE FROM alert_instances WHERE state = 'resolved' AND since < ?1"));
  q.Bind(1, before);
  return q.Run();
}

}  // namespace gantry::monitor::alerts
