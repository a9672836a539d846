#include "common/service.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "common/curve.h"
#include "common/fs.h"

namespace gantry {

Status RunService(RpcServer& server, SignalFd& signals, const DataDir& dir, const ServiceInfo& given) {
  ServiceInfo info = given;
  info.max_message_bytes = server.max_message_bytes();
  // "curve" tells clients on this host to use <data>/keys (common/curve.h).
  const std::string auth = ProcessCurveEnabled() ? "curve" : "none";
  server.Handle("ping", [&info, auth](const Request&) -> Result<json> {
    return json{{"service", info.name}, {"pid", ::getpid()}, {"version", kVersion},
                {"endpoints", info.endpoints}, {"max_message_bytes", info.max_message_bytes}, {"auth", auth}};
  });
  server.Handle("shutdown", [&server](const Request&) -> Result<json> {
    spdlog::info("shutdown requested");
    server.Stop();  // the reply still goes out: Stop() ends the loop after it
    return json::object();
  });
  server.AddFd(signals.fd(), [&server, &signals] {
    int sig = signals.Read();
    if (sig) {
      spdlog::info("signal {} received, stopping", sig);
      server.Stop();
    }
  });
  json run = info.ToJson();
  run["auth"] = auth;
  GANTRY_RETURN_IF_ERROR(WriteFileAtomic(dir.RunFile(info.name), run.dump(2) + "\n"));
  spdlog::info("{} serving (pid {}), data dir {}", info.name, ::getpid(), dir.root());
  for (const auto& [k, v] : info.endpoints) spdlog::info("  {}: {}", k, v);
  Status s = server.Serve();
  dir.RemoveServiceInfo(info.name);
  spdlog::info("{} stopped", info.name);
  return s;
}

}  // namespace gantry
