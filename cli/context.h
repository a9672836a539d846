// What every CLI command shares: the data directory that names the cluster,
// lazily created clients for its services, and output helpers.
//
// Commands speak the wire protocol only (DESIGN.md): nothing here touches a
// service's files except the run/ records that say where the services are.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "common/data_dir.h"
#include "common/rpc.h"

namespace gantry::cli {

class Context {
 public:
  std::string data_dir_flag;  // --data-dir, resolved lazily
  // --keys: CURVE keys (server.pub, client.key) for a cluster with auth:
  // curve; else $GANTRY_KEYS, else <data>/keys when the run files say curve.
  std::string keys_flag;

  DataDir dir() const { return DataDir::Resolve(data_dir_flag); }
  zmq::context_t& zmq() { return zmq_; }
  // Chooses this process's CURVE keys (common/curve.h) once, before the
  // first socket: --keys, $GANTRY_KEYS, or <data>/keys when `service`'s run
  // file says auth: curve. Call() does it; a command opening sockets of its
  // own calls it first. The keys directory in use ("" with CURVE off).
  Result<std::string> UseKeys(const std::string& service);

  // Calls `type` on a service's API ("coordinator", "storage", "monitor").
  // A service that is down or dies mid-call fails in seconds (RpcClient);
  // the error names the service and its endpoint.
  Result<json> Call(const std::string& service, const std::string& type, const json& body = json::object(),
                    std::chrono::milliseconds timeout = std::chrono::seconds(30));
  Result<json> Call(const std::string& service, const std::string& type, const json& body,
                    const RpcClient::CallOptions& options);

 private:
  zmq::context_t zmq_;
  bool keys_chosen_ = false;
  std::string keys_dir_;
  std::map<std::string, std::unique_ptr<RpcClient>> clients_;
};

// How long a command whose request may be sent again (a read, or a write
// with a request_id) waits for a service that died mid-request to come
// back (a supervisor restarts it in about a second) before it fails.
inline constexpr std::chrono::seconds kRetryWindow{5};
// CallOptions for such a request: idempotent, retried for kRetryWindow.
inline RpcClient::CallOptions Retrying(std::chrono::milliseconds timeout) {
  RpcClient::CallOptions o;
  o.timeout = timeout;
  o.idempotent = true;
  o.retry_for = kRetryWindow;
  return o;
}

// The command to run once arguments are parsed; returns the exit code.
using Action = std::function<int()>;

// Prints "gantry: <message>" to stderr and returns 1.
int Fail(const Status& s);
// Prints `j` indented to stdout.
void PrintJson(const json& j);
// "12:03:44" or "2026-11-23 12:03" for older times; "-" for 0.
std::string FormatTime(double unix_seconds);
// "1m12s", "3h04m".
std::string FormatDuration(double seconds);
// Left-aligned columns, two spaces apart.
void PrintTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

// Exit codes of commands that wait for a job (watch, wait).
inline constexpr int kExitSucceeded = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitCancelled = 3;
inline constexpr int kExitTimeout = 4;
int ExitCodeForState(const std::string& state);
bool IsTerminalState(const std::string& state);

}  // namespace gantry::cli
