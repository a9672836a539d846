// The data directory: where every service of one cluster keeps its state and
// how clients find the services (docs/operations.md shows the tree).
//
//   <data>/run/<service>.json   {pid, endpoints{...}} written by each service
//                               once its sockets are bound; removed on exit
//   <data>/logs/<service>.log   service logs
//   <data>/coordinator.db       job queue and history (SQLite, WAL)
//   <data>/jobs/<id>/           spec.json, attempt-<n>/{rank-<r>.log,launcher.log}
//   <data>/monitor.db           metrics (SQLite, WAL)
//   <data>/registry.db          checkpoint index (SQLite, WAL)
//   <data>/checkpoints/.packs/      deduplicated tensor blobs (docs/storage.md)
//   <data>/checkpoints/<model>/v<N>/manifest.json
#pragma once

#include <sys/types.h>

#include <map>
#include <string>

#include "common/protocol.h"

namespace gantry {

inline constexpr const char* kCoordinator = "coordinator";
inline constexpr const char* kStorage = "storage";
inline constexpr const char* kMonitor = "monitor";

// Default loopback ports of the embedded cluster (DESIGN.md).
inline constexpr int kCoordinatorPort = 7600;
inline constexpr int kStoragePort = 7601;
inline constexpr int kMonitorIngestPort = 7602;
inline constexpr int kMonitorFeedPort = 7603;
inline constexpr int kMonitorApiPort = 7604;
inline constexpr int kMonitorHttpPort = 8600;

// What a running service publishes about itself.
struct ServiceInfo {
  std::string name;
  pid_t pid = 0;
  std::map<std::string, std::string> endpoints;  // "api", "ingest", "feed"
  // Largest request the API accepts; 0 = not published (RunService fills it).
  int64_t max_message_bytes = 0;
  json ToJson() const;
  static Result<ServiceInfo> FromJson(const json& j);
};

class DataDir {
 public:
  explicit DataDir(std::string root);
  // Resolution order: explicit flag, $GANTRY_DATA_DIR, ./.gantry.
  static DataDir Resolve(const std::string& flag);

  const std::string& root() const { return root_; }
  std::string RunFile(const std::string& service) const;
  std::string LogFile(const std::string& service) const;
  std::string JobDir(const std::string& job_id) const;
  std::string AttemptDir(const std::string& job_id, int attempt) const;
  std::string Path(const std::string& rel) const { return root_ + "/" + rel; }

  // Creates run/, logs/, jobs/.
  Status Ensure() const;
  Status WriteServiceInfo(const ServiceInfo& info) const;
  Result<ServiceInfo> ReadServiceInfo(const std::string& service) const;
  void RemoveServiceInfo(const std::string& service) const;
  // Endpoint `which` of `service`, or a not-running error that says how to
  // start a cluster.
  Result<std::string> Endpoint(const std::string& service, const std::string& which) const;

 private:
  std::string root_;
};

}  // namespace gantry
