// Coordinator::ReadLog: a piece of one attempt's rank or launcher log
// (coordinator.h), apart from the state machine in coordinator.cc.
#include <algorithm>
#include <cstdio>

#include "coordinator/coordinator.h"

namespace gantry::coordinator {

Result<LogChunk> Coordinator::ReadLog(const std::string& job_id, int attempt, int rank, bool launcher,
                                      int64_t offset, int64_t max_bytes) {
  GANTRY_ASSIGN_OR_RETURN(Job job, Find(job_id));
  if (job.attempt == 0) {
    return Status::NotFound("job " + job_id + " has not started yet (" + std::string(JobStateName(job.state)) +
                            ": " + job.reason + ")");
  }
  if (attempt <= 0) attempt = job.attempt;
  if (attempt > job.attempt) {
    return Status::NotFound("job " + job_id + " has " + std::to_string(job.attempt) + " attempt(s), not " +
                            std::to_string(attempt));
  }
  if (rank < 0 || rank >= job.spec.resources.workers) {
    return Status::InvalidArgument("rank must be 0.." + std::to_string(job.spec.resources.workers - 1));
  }
  LogChunk chunk;
  chunk.attempt = attempt;
  chunk.rank = rank;
  chunk.path = dir_.AttemptDir(job_id, attempt) + "/" +
               (launcher ? std::string("launcher.log") : "rank-" + std::to_string(rank) + ".log");
  FILE* f = std::fopen(chunk.path.c_str(), "rb");
  if (!f) return Status::NotFound("no log yet at " + chunk.path);
  std::fseek(f, 0, SEEK_END);
  int64_t size = std::ftell(f);
  offset = std::clamp<int64_t>(offset, 0, size);
  int64_t n = std::min(max_bytes, size - offset);
  chunk.data.resize(static_cast<size_t>(n));
  std::fseek(f, offset, SEEK_SET);
  size_t got = std::fread(chunk.data.data(), 1, chunk.data.size(), f);
  std::fclose(f);
  chunk.data.resize(got);
  chunk.next_offset = offset + static_cast<int64_t>(got);
  chunk.eof = chunk.next_offset >= size;
  return chunk;
}

}  // namespace gantry::coordinator
