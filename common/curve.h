// ZeroMQ CURVE for every Gantry socket that leaves the process (DESIGN.md
// "Security", docs/operations.md "Keys").
//
// Keys live in a directory, by default <data>/keys (mode 0700; every file
// 0600), each key Z85 text (40 characters):
//   server.key       the services' pair:  "public = <Z85>" / "secret = <Z85>"
//   server.pub       the services' public key alone ("public = <Z85>")
//   client.key       the default client pair (the CLI, workers, gantry-serve
//                    and the services calling each other use it)
//   authorized_keys  the client public keys the services accept, one per
//                    line; a line starting with '#' is a comment, so is
//                    text after the key and a blank ('#' is also a Z85
//                    character, so it cannot start a comment mid-line)
// A client on another host gets a directory holding server.pub and its own
// client.key (`gantry --keys DIR`, or GANTRY_KEYS=DIR for every process), and
// its public key is appended to authorized_keys on the cluster host.
//
// One process talks to one cluster, so the settings are process-wide:
// main() calls SetProcessCurve() once, before any socket exists, and every
// socket then calls MakeCurveServer() (before bind) or MakeCurveClient()
// (before connect); both do nothing while CURVE is off. A process that binds
// with CURVE runs a ZapHandler on the socket's context first: it is what
// refuses a client whose key is not in authorized_keys (without one, libzmq
// accepts every client that knows server.pub), so MakeCurveServer() fails
// while none runs.
//
// With auth: none the services bind loopback only (CheckBindAllowed).
//
// Thread safety: SetProcessCurve() before threads start; the rest may be
// called from any thread. A ZapHandler answers on its own thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "common/status.h"

namespace gantry {

// File names inside a keys directory.
inline constexpr const char* kKeysDirName = "keys";  // under the data dir
inline constexpr const char* kServerKeyFile = "server.key";
inline constexpr const char* kServerPubFile = "server.pub";
inline constexpr const char* kClientKeyFile = "client.key";
inline constexpr const char* kAuthorizedKeysFile = "authorized_keys";
// Environment variable naming a client keys directory (like --keys).
inline constexpr const char* kKeysEnv = "GANTRY_KEYS";

struct CurveKeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters; empty for a public key alone
};

struct CurveSettings {
  bool enabled = false;
  std::string keys_dir;
  // Client side: the services' public key and this process's pair.
  std::string server_public_key;
  CurveKeyPair client;
  // Server side (services only): the services' pair and who may connect.
  CurveKeyPair server;
  std::string authorized_keys_path;
  bool is_server() const { return !server.secret_key.empty(); }
};

// A fresh pair from libzmq (zmq_curve_keypair).
Result<CurveKeyPair> GenerateCurveKeyPair();
// True when `key` is 40 characters of the Z85 alphabet.
bool IsZ85Key(const std::string& key);

// Creates what is missing of server.key, server.pub, client.key and
// authorized_keys (holding client.key's public key) in `dir`, creating `dir`
// with mode 0700. Existing keys are kept; each file is created exclusively,
// so processes racing here agree on one set.
Status EnsureClusterKeys(const std::string& dir);

// "public = X" / "secret = X" lines (lines starting with '#' are comments). A file holding a secret
// must not be readable by group or others (the error says to chmod 600).
Result<CurveKeyPair> ReadKeyFile(const std::string& path);
// The client public keys of an authorized_keys file.
Result<std::set<std::string>> ReadAuthorizedKeys(const std::string& path);

// Settings of a service: server.key, client.key (for calling the other
// services) and authorized_keys from `dir`.
Result<CurveSettings> LoadServerCurve(const std::string& dir);
// Settings of a client: server.pub (or server.key's public half) and
// client.key from `dir`.
Result<CurveSettings> LoadClientCurve(const std::string& dir);

// Which keys a client process uses: `keys_flag` (--keys), else $GANTRY_KEYS,
// else <data>/keys when `run_file_auth` (what the service's run file says)
// is "curve". CURVE off (enabled false) when none applies.
Result<CurveSettings> ResolveClientCurve(const std::string& keys_flag, const std::string& data_dir,
                                         const std::string& run_file_auth);
// The "auth" field of a run file (<data>/run/<service>.json): "curve" or
// "none" (also for a missing or unreadable file).
std::string RunFileAuth(const std::string& run_file);

class ZapHandler;

// For a service's main(), before any socket: with `auth` "curve" loads the
// keys from `keys_dir` (empty: <data_dir>/keys, created when missing), sets
// them process-wide and starts the ZAP handler on `ctx` (keep it until the
// sockets are closed); "none": CURVE off, nullptr. invalid_argument for
// another `auth`.
Result<std::unique_ptr<ZapHandler>> SetUpServiceCurve(zmq::context_t& ctx, const std::string& auth,
                                                      const std::string& keys_dir, const std::string& data_dir);
// For a client's main() (worker, gantry-serve, gantry-optimize): the keys of
// --keys `keys_flag`, else $GANTRY_KEYS, else none (ResolveClientCurve),
// set process-wide.
Status SetUpClientCurve(const std::string& keys_flag, const std::string& data_dir = "",
                        const std::string& run_file_auth = "none");

void SetProcessCurve(CurveSettings settings);
// A copy of the process's settings (disabled until SetProcessCurve).
CurveSettings ProcessCurve();
bool ProcessCurveEnabled();

// Makes `socket` a CURVE server with the process's (or the given) settings.
// FailedPrecondition when CURVE is on and no ZapHandler runs in this process.
Status MakeCurveServer(zmq::socket_t& socket);
Status MakeCurveServer(zmq::socket_t& socket, const CurveSettings& settings);
// Makes `socket` a CURVE client of the services.
void MakeCurveClient(zmq::socket_t& socket);
void MakeCurveClient(zmq::socket_t& socket, const CurveSettings& settings);

// Whether a ZeroMQ endpoint ("tcp://HOST:PORT"; ipc:// and inproc:// stay on
// this machine) or an HTTP "HOST:PORT" is reachable from this host only.
bool IsLoopbackEndpoint(const std::string& endpoint);
// invalid_argument naming `what` (e.g. "--bind") when `endpoint` is beyond
// loopback and CURVE is off.
Status CheckBindAllowed(const std::string& endpoint, bool curve, const std::string& what);

// What a failed CURVE handshake means, for a client's error message:
// `event` a ZMQ_EVENT_HANDSHAKE_FAILED_* event, `value` its value,
// `client_curve` whether this side used CURVE.
std::string DescribeHandshakeFailure(const std::string& endpoint, uint16_t event, uint32_t value,
                                     bool client_curve);

// The ZAP handler (RFC 27) of one ZeroMQ context: accepts a CURVE client
// whose public key is in authorized_keys and refuses everything else (other
// mechanisms, unknown keys, malformed requests). The file is read again when
// it changes (size, mtime or inode), so a key added or removed counts for
// the next connection; an unreadable file refuses everyone. The reply's
// User-Id is the client's Z85 public key.
class ZapHandler {
 public:
  // Binds inproc://zeromq.zap.01 on `ctx` and starts answering.
  static Result<std::unique_ptr<ZapHandler>> Start(zmq::context_t& ctx, std::string authorized_keys_path);
  ~ZapHandler();  // Stop()
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Ends the thread (woken through an eventfd, no polling interval).
  void Stop();
  int64_t accepted() const { return accepted_.load(); }
  int64_t refused() const { return refused_.load(); }

 private:
  ZapHandler(zmq::context_t& ctx, std::string path);
  void Run();
  // Builds the reply to one request (frames as received).
  void Answer(std::vector<zmq::message_t>& request);
  bool Authorized(const std::string& z85);

  zmq::socket_t socket_;  // REP on the ZAP endpoint, used by the thread only
  std::string path_;
  int wake_fd_ = -1;      // eventfd: Stop() writes, the thread wakes
  std::thread thread_;
  // The file's keys and what identified its version (thread only).
  std::set<std::string> keys_;
  bool keys_ok_ = false;
  std::string keys_stamp_;
  std::atomic<int64_t> accepted_{0};
  std::atomic<int64_t> refused_{0};
};

}  // namespace gantry
