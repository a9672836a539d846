// DeploymentStore: the coordinator's deployments in its SQLite database
// (the `deployments` table of CoordinatorSchema(), coordinator.db). Every
// change is written before it is acted on, so a restarted coordinator finds
// each deployment and the process group to re-adopt. Dumb persistence: the
// restart policy lives in Deployments.
//
// Thread safety: not thread-safe; owned by the coordinator's loop thread.
#pragma once

#include <string>
#include <vector>

#include "common/sqlite.h"
#include "coordinator/deployment.h"

namespace gantry::coordinator {

class DeploymentStore {
 public:
  // Opens (and migrates) the coordinator database at `path`; a second
  // connection beside the JobStore's is fine (WAL).
  static Result<DeploymentStore> Open(const std::string& path);

  // already_exists when the name is taken.
  Status Insert(const Deployment& d);
  // Writes every field but the spec and created_at; not_found when absent.
  Status Update(const Deployment& d);
  Status Remove(const std::string& name);
  // All deployments by name. corruption when a row cannot be read back.
  Result<std::vector<Deployment>> List();

 private:
  explicit DeploymentStore(sql::Db db) : db_(std::move(db)) {}
  sql::Db db_;
};

}  // namespace gantry::coordinator
