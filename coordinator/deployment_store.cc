#include "coordinator/deployment_store.h"

#include "common/protocol.h"
#include "coordinator/job_store.h"

namespace gantry::coordinator {
namespace {

// The spec column: a JSON map, so adding a field needs no migration.
std::string SpecText(const DeploymentSpec& s) {
  return json{{"model", s.model},         {"ref", s.ref},   {"port", s.port}, {"max_batch", s.max_batch},
              {"max_delay_ms", s.max_delay_ms}, {"int8", s.int8}, {"sample_rate", s.sample_rate}}
      .dump();
}

Result<DeploymentSpec> SpecFromText(const std::string& name, const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Corruption("deployment store: the spec of " + name + " is not a JSON map");
  }
  DeploymentSpec s;
  s.name = name;
  s.model = j.value("model", "");
  s.ref = j.value("ref", "");
  s.port = j.value("port", 0);
  s.max_batch = j.value("max_batch", 64);
  s.max_delay_ms = j.value("max_delay_ms", 0);
  s.int8 = j.value("int8", false);
  s.sample_rate = j.contains("sample_rate") && j["sample_rate"].is_number() ? j["sample_rate"].get<double>() : 0.1;
  if (Status v = s.Validate(); !v.ok()) {
    return Status::Corruption("deployment store: the spec of " + name + " is invalid: " + v.message());
  }
  return s;
}

constexpr const char* kColumns =
    "name, spec, state, reason, port, pid, pgid, serve_pid, version, restarts, created_at, updated_at, "
    "started_at, ready_at, last_exit, dir";

}  // namespace

Result<DeploymentStore> DeploymentStore::Open(const std::string& path) {
  GANTRY_ASSIGN_OR_RETURN(sql::Db db, sql::Db::Open(path, /*durable=*/true));
  GANTRY_RETURN_IF_ERROR(db.Migrate(CoordinatorSchema()).WithContext("migrating " + path));
  return DeploymentStore(std::move(db));
}

Status DeploymentStore::Insert(const Deployment& d) {
  GANTRY_ASSIGN_OR_RETURN(auto exists, db_.Prepare("SELECT 1 FROM deployments WHERE name=?"));
  exists.Bind(1, d.spec.name);
  GANTRY_ASSIGN_OR_RETURN(bool row, exists.Step());
  if (row) {
    return Status::AlreadyExists("deploy: name '" + d.spec.name + "' is taken by a deployment; pick another " +
                                 "--name or `gantry undeploy " + d.spec.name + "` first");
  }
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(std::string("INSERT INTO deployments (") + kColumns +
                                              ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  q.Bind(1, d.spec.name).Bind(2, SpecText(d.spec)).Bind(3, DeploymentStateName(d.state)).Bind(4, d.reason);
  q.Bind(5, d.port).Bind(6, d.pid).Bind(7, d.pgid).Bind(8, d.serve_pid).Bind(9, d.version).Bind(10, d.restarts);
  q.Bind(11, d.created_at).Bind(12, d.updated_at).Bind(13, d.started_at).Bind(14, d.ready_at);
  q.Bind(15, d.last_exit).Bind(16, d.dir);
  return q.Run();
}

Status DeploymentStore::Update(const Deployment& d) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "UPDATE deployments SET state=?, reason=?, port=?, pid=?, pgid=?, serve_pid=?, version=?, restarts=?, "
      "updated_at=?, started_at=?, ready_at=?, last_exit=?, dir=? WHERE name=?"));
  q.Bind(1, DeploymentStateName(d.state)).Bind(2, d.reason).Bind(3, d.port).Bind(4, d.pid).Bind(5, d.pgid);
  q.Bind(6, d.serve_pid).Bind(7, d.version).Bind(8, d.restarts).Bind(9, d.updated_at).Bind(10, d.started_at);
  q.Bind(11, d.ready_at).Bind(12, d.last_exit).Bind(13, d.dir).Bind(14, d.spec.name);
  GANTRY_RETURN_IF_ERROR(q.Run());
  if (db_.Changes() != 1) return Status::NotFound("deployment " + d.spec.name + " not in the store");
  return Status::Ok();
}

Status DeploymentStore::Remove(const std::string& name) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("DELETE FROM deployments WHERE name=?"));
  q.Bind(1, name);
  return q.Run();
}

Result<std::vector<Deployment>> DeploymentStore::List() {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(std::string("SELECT ") + kColumns + " FROM deployments ORDER BY name"));
  std::vector<Deployment> out;
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    Deployment d;
    std::string name = q.ColumnText(0);
    GANTRY_ASSIGN_OR_RETURN(d.spec, SpecFromText(name, q.ColumnText(1)));
    auto state = DeploymentStateFromName(q.ColumnText(2));
    if (!state) return Status::Corruption("deployment " + name + " has unknown state " + q.ColumnText(2));
    d.state = *state;
    d.reason = q.ColumnText(3);
    d.port = static_cast<int>(q.ColumnInt(4));
    d.pid = static_cast<int>(q.ColumnInt(5));
    d.pgid = static_cast<int>(q.ColumnInt(6));
    d.serve_pid = static_cast<int>(q.ColumnInt(7));
    d.version = q.ColumnText(8);
    d.restarts = static_cast<int>(q.ColumnInt(9));
    d.created_at = q.ColumnDouble(10);
    d.updated_at = q.ColumnDouble(11);
    d.started_at = q.ColumnDouble(12);
    d.ready_at = q.ColumnDouble(13);
    d.last_exit = q.ColumnText(14);
    d.dir = q.ColumnText(15);
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace gantry::coordinator
