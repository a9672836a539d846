#include "common/data_dir.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "common/fs.h"
#include "common/process.h"

namespace gantry {

json ServiceInfo::ToJson() const {
  json j = {{"name", name}, {"pid", pid}, {"endpoints", endpoints}};
  if (max_message_bytes > 0) j["max_message_bytes"] = max_message_bytes;
  return j;
}

Result<ServiceInfo> ServiceInfo::FromJson(const json& j) {
  ServiceInfo s;
  try {
    s.name = j.at("name").get<std::string>();
    s.pid = j.at("pid").get<pid_t>();
    s.endpoints = j.at("endpoints").get<std::map<std::string, std::string>>();
    s.max_message_bytes = j.value("max_message_bytes", int64_t{0});
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("service file: ") + e.what());
  }
  return s;
}

DataDir::DataDir(std::string root)
    : root_(std::filesystem::absolute(root).lexically_normal().string()) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

DataDir DataDir::Resolve(const std::string& flag) {
  if (!flag.empty()) return DataDir(flag);
  if (const char* env = std::getenv("GANTRY_DATA_DIR"); env && *env) return DataDir(env);
  return DataDir(".gantry");
}

std::string DataDir::RunFile(const std::string& s) const { return root_ + "/run/" + s + ".json"; }
std::string DataDir::LogFile(const std::string& s) const { return root_ + "/logs/" + s + ".log"; }
std::string DataDir::JobDir(const std::string& id) const { return root_ + "/jobs/" + id; }
std::string DataDir::AttemptDir(const std::string& id, int attempt) const {
  return JobDir(id) + "/attempt-" + std::to_string(attempt);
}

Status DataDir::Ensure() const {
  for (const char* sub : {"run", "logs", "jobs"}) GANTRY_RETURN_IF_ERROR(MakeDirs(root_ + "/" + sub));
  return Status::Ok();
}

Status DataDir::WriteServiceInfo(const ServiceInfo& info) const {
  return WriteFileAtomic(RunFile(info.name), info.ToJson().dump(2) + "\n");
}

Result<ServiceInfo> DataDir::ReadServiceInfo(const std::string& service) const {
  auto text = ReadFile(RunFile(service));
  if (!text.ok()) {
    return Status::Unavailable("no Gantry " + service + " is running for data dir " + root_ +
                               " (start the cluster with `gantry up`, or point at another with "
                               "--data-dir / GANTRY_DATA_DIR)");
  }
  json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Corruption("unreadable " + RunFile(service));
  GANTRY_ASSIGN_OR_RETURN(ServiceInfo info, ServiceInfo::FromJson(j));
  if (!ProcessAlive(info.pid)) {
    return Status::Unavailable("Gantry " + service + " for data dir " + root_ + " is not running (pid " +
                               std::to_string(info.pid) + " is gone; start it with `gantry up`)");
  }
  return info;
}

void DataDir::RemoveServiceInfo(const std::string& service) const {
  std::error_code ec;
  std::filesystem::remove(RunFile(service), ec);
}

Result<std::string> DataDir::Endpoint(const std::string& service, const std::string& which) const {
  GANTRY_ASSIGN_OR_RETURN(ServiceInfo info, ReadServiceInfo(service));
  auto it = info.endpoints.find(which);
  if (it == info.endpoints.end()) {
    return Status::Corruption(service + " publishes no '" + which + "' endpoint in " + RunFile(service));
  }
  return it->second;
}

}  // namespace gantry
