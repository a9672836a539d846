// JobStore: the coordinator's durable queue and history in SQLite (WAL).
//
// Every state change is written before it is acted on or acknowledged, so a
// coordinator restarted after a crash finds each job where it left it. The
// store is dumb persistence: the state machine lives in Coordinator. Every
// write returns its error; the coordinator fails the transition on one.
//
// Thread safety: not thread-safe; owned by the coordinator's loop thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/sqlite.h"
#include "coordinator/job.h"

namespace gantry::coordinator {

// The schema steps of the coordinator's database (jobs, attempts,
// deployments), applied in order by whichever store opens it first.
const std::vector<std::string>& CoordinatorSchema();

class JobStore {
 public:
  static Result<JobStore> Open(const std::string& path);

  // Inserts a new job; assigns job.seq. A non-empty `request_id` (the
  // client's submit_job request_id) is stored with it, unique across the
  // store: a second job with the same id is refused (already_exists).
  Status Insert(Job& job, const std::string& request_id = "");
  // The job recorded with `request_id`, if any.
  Result<std::optional<std::string>> JobForRequest(const std::string& request_id);
  // Writes every mutable field of `job` (state, attempt, reason, times...).
  Status Update(const Job& job);
  // Errors: not_found; corruption when a stored row (state, spec JSON)
  // cannot be read back.
  Result<Job> Get(const std::string& id);
  // All jobs, oldest first. `active_only` skips terminal jobs.
  Result<std::vector<Job>> List(bool active_only, int limit = 1000);

  // Records attempt a.number of a.job_id, replacing a row left by an
  // earlier try to start the same attempt.
  Status InsertAttempt(const Attempt& a);
  Status UpdateAttempt(const Attempt& a);
  Result<std::vector<Attempt>> Attempts(const std::string& job_id);

 private:
  explicit JobStore(sql::Db db) : db_(std::move(db)) {}
  Result<Job> Row(sql::Statement& q);

  sql::Db db_;
};

}  // namespace gantry::coordinator
