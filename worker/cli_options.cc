#include "worker/cli_options.h"

#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "common/config.h"
#include "common/fs.h"

namespace gantry::worker {

ParsedArgs ParseArgs(int argc, char** argv) {
  WorkerOptions o;
  CLI::App app{"gantry-worker: one data-parallel rank of a Gantry training job (run by mpirun)"};
  app.add_option("--job-id", o.job_id, "job id")->required();
  app.add_option("--attempt", o.attempt, "attempt number (1, 2, ...)")
      ->required()
      ->check(CLI::PositiveNumber);
  app.add_option("--spec", o.spec_path, "job spec file (JSON or YAML)")->required();
  app.add_option("--storage", o.storage, "storage service endpoint; empty = no checkpoints")
      ->required();
  app.add_option("--monitor", o.monitor, "monitor ingest endpoint; empty = no metrics")
      ->required();
  app.add_option("--coordinator", o.coordinator,
                 "coordinator API endpoint for heartbeats; empty = no heartbeats");
  app.add_option("--log-dir", o.log_dir, "append this rank's output to DIR/rank-<R>.log");
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return {std::nullopt, rc == 0 ? kExitOk : kExitBadInput};
  }
  if (o.job_id.empty()) {
    std::fprintf(stderr, "--job-id must not be empty\n");
    return {std::nullopt, kExitBadInput};
  }
  return {std::move(o), kExitOk};
}

int RankFromEnv() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') continue;
    char* end = nullptr;
    long r = std::strtol(v, &end, 10);
    if (*end == '\0' && r >= 0 && r < 1 << 20) return static_cast<int>(r);
  }
  return 0;
}

Status RedirectOutput(const std::string& log_dir, int rank) {
  GANTRY_RETURN_IF_ERROR(MakeDirs(log_dir).WithContext("--log-dir"));
  std::string path = log_dir + "/rank-" + std::to_string(rank) + ".log";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status::InvalidArgument("--log-dir: cannot open " + path + ": " + std::strerror(errno));
  }
  std::fflush(stdout);
  std::fflush(stderr);
  bool ok = ::dup2(fd, STDOUT_FILENO) >= 0 && ::dup2(fd, STDERR_FILENO) >= 0;
  int err = errno;
  ::close(fd);
  if (!ok) return Status::Internal("--log-dir: dup2 onto " + path + ": " + std::strerror(err));
  // Line-buffer stdout so interleaving with stderr stays in order.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  return Status::Ok();
}

Result<JobSpec> LoadJobSpec(const std::string& path) {
  // YAML is a superset of JSON: one loader reads both.
  auto doc = LoadYamlFile(path);
  if (!doc.ok()) return Status::InvalidArgument(doc.status().message()).WithContext("--spec " + path);
  std::error_code ec;
  std::string dir = std::filesystem::absolute(path, ec).parent_path().string();
  GANTRY_ASSIGN_OR_RETURN(JobSpec spec, JobSpec::Parse(*doc, dir));
  if (spec.resources.device == "cuda") {
    // CUDA tensors are reduced with NCCL: a build with CUDA alone has no
    // communicator for them, so it refuses too.
#if !(defined(GANTRY_WITH_CUDA) && defined(GANTRY_WITH_NCCL))
    return Status::InvalidArgument(
        "job spec: resources.device 'cuda' needs a gantry-worker built with CUDA and NCCL, and this one "
        "was not: rebuild with -DGANTRY_WITH_CUDA=ON -DGANTRY_WITH_NCCL=ON (scripts/build-cuda.sh), "
        "or use resources.device: cpu");
#endif
  } else if (spec.resources.device != "cpu") {
    return Status::InvalidArgument("job spec: resources.device '" + spec.resources.device +
                                   "' is not supported by this worker (use cpu or cuda)");
  }
  return spec;
}

int ExitCodeFor(const Status& status) {
  if (status.ok()) return kExitOk;
  return status.code() == StatusCode::kInvalidArgument ? kExitBadInput : kExitFailure;
}

}  // namespace gantry::worker
