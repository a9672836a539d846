#include "common/curve.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/fs.h"

namespace gantry {
namespace {

// The process's settings (SetProcessCurve) and how many ZapHandlers run.
std::mutex g_mu;
CurveSettings g_settings;  // GUARDED_BY(g_mu)
std::atomic<int> g_zap_handlers{0};

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

std::string Trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(0, s.find_first_not_of(ws));
  auto end = s.find_last_not_of(ws);
  s.erase(end == std::string::npos ? 0 : end + 1);
  return s;
}

std::string KeyFileText(const CurveKeyPair& k, const std::string& what) {
  std::string t = "# Gantry CURVE " + what + " (ZeroMQ Z85); keep it mode 0600\n";
  t += "public = " + k.public_key + "\n";
  if (!k.secret_key.empty()) t += "secret = " + k.secret_key + "\n";
  return t;
}

// Creates `path` holding `text` (mode 0600) unless it exists. A temporary
// file is linked into place, so a racing creator's file wins whole or not at
// all.
Status CreateExclusive(const std::string& path, const std::string& text) {
  if (PathExists(path)) return Status::Ok();
  std::string tmp = path + ".tmp-XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return Status::Unavailable("creating " + path + ": " + std::strerror(errno));
  bool ok = ::fchmod(fd, 0600) == 0;
  size_t off = 0;
  while (ok && off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) off += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return Status::Unavailable("writing " + path + ": " + std::strerror(err));
  }
  const int rc = ::link(tmp.c_str(), path.c_str());
  const int link_err = errno;
  ::unlink(tmp.c_str());
  if (rc != 0 && link_err != EEXIST) return Status::Unavailable("creating " + path + ": " + std::strerror(link_err));
  return FsyncPath(std::filesystem::path(path).parent_path().string());
}

Status CheckPrivate(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::NotFound("key file " + path + ": " + std::strerror(errno));
  }
  if ((st.st_mode & 077) != 0) {
    return Status::FailedPrecondition("key file " + path +
                                      " is readable by group or others; run chmod 600 on it");
  }
  return Status::Ok();
}

std::string Z85Public(const std::string& secret) {
  char pub[41] = {};
  if (zmq_curve_public(pub, secret.c_str()) != 0) return "";
  return pub;
}

std::string HostOf(std::string ep) {
  for (const char* scheme : {"tcp://", "http://", "https://"}) {
    if (ep.rfind(scheme, 0) == 0) ep = ep.substr(std::strlen(scheme));
  }
  if (auto semi = ep.find(';'); semi != std::string::npos) ep = ep.substr(semi + 1);  // source;dest
  auto colon = ep.rfind(':');
  if (colon == std::string::npos) return ep;
  return ep.substr(0, colon);
}

}  // namespace

Result<CurveKeyPair> GenerateCurveKeyPair() {
  char pub[41] = {};
  char sec[41] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    return Status::FailedPrecondition(std::string("zmq_curve_keypair: ") + zmq_strerror(zmq_errno()) +
                                      " (this libzmq was built without CURVE support; install one with libsodium)");
  }
  return CurveKeyPair{pub, sec};
}

bool IsZ85Key(const std::string& key) {
  static const std::string kAlphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  return key.size() == 40 && key.find_first_not_of(kAlphabet) == std::string::npos;
}

Status EnsureClusterKeys(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    GANTRY_RETURN_IF_ERROR(MakeDirs(dir));
    if (::chmod(dir.c_str(), 0700) != 0) {
      return Status::Unavailable("chmod 700 " + dir + ": " + std::strerror(errno));
    }
  }
  const std::string server_key = dir + "/" + kServerKeyFile;
  const std::string client_key = dir + "/" + kClientKeyFile;
  if (!PathExists(server_key)) {
    GANTRY_ASSIGN_OR_RETURN(CurveKeyPair pair, GenerateCurveKeyPair());
    GANTRY_RETURN_IF_ERROR(CreateExclusive(server_key, KeyFileText(pair, "service key pair")));
  }
  GANTRY_ASSIGN_OR_RETURN(CurveKeyPair server, ReadKeyFile(server_key));
  GANTRY_RETURN_IF_ERROR(
      CreateExclusive(dir + "/" + kServerPubFile, KeyFileText({server.public_key, ""}, "service public key")));
  if (!PathExists(client_key)) {
    GANTRY_ASSIGN_OR_RETURN(CurveKeyPair pair, GenerateCurveKeyPair());
    GANTRY_RETURN_IF_ERROR(CreateExclusive(client_key, KeyFileText(pair, "client key pair")));
  }
  GANTRY_ASSIGN_OR_RETURN(CurveKeyPair client, ReadKeyFile(client_key));
  return CreateExclusive(dir + "/" + kAuthorizedKeysFile,
                         "# Client public keys the Gantry services accept (ZeroMQ CURVE, Z85), one per line.\n"
                         "# Add a client on another host: append its client.key's public key.\n" +
                             client.public_key + " default client (" + kClientKeyFile + ")\n");
}

Result<CurveKeyPair> ReadKeyFile(const std::string& path) {
  GANTRY_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  CurveKeyPair k;
  std::istringstream in(text);
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    // '#' is a Z85 character too: only a line that starts with it is a
    // comment, and text after the key's first blank.
    line = Trim(line);
    if (line.empty() || line[0] == '#') continue;
    std::string name = "public";  // a bare key line: a server.pub written by hand
    std::string value = line;
    for (const char* field : {"public", "secret"}) {
      const size_t n = std::strlen(field);
      if (line.compare(0, n, field) != 0) continue;
      const std::string rest = Trim(line.substr(n));
      if (rest.empty() || rest[0] != '=') continue;
      name = field;
      value = Trim(rest.substr(1));
    }
    value = value.substr(0, value.find_first_of(" \t"));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    if ((name != "public" && name != "secret") || !IsZ85Key(value)) {
      return Status::InvalidArgument("key file " + path + " line " + std::to_string(line_no) +
                                     ": expected 'public = <40 Z85 characters>' or 'secret = ...'");
    }
    (name == "public" ? k.public_key : k.secret_key) = value;
  }
  if (!k.secret_key.empty()) {
    GANTRY_RETURN_IF_ERROR(CheckPrivate(path));
    const std::string derived = Z85Public(k.secret_key);
    if (k.public_key.empty()) k.public_key = derived;
    if (k.public_key != derived) {
      return Status::InvalidArgument("key file " + path + ": the public key is not the secret key's");
    }
  }
  if (k.public_key.empty()) return Status::InvalidArgument("key file " + path + " holds no 'public = ...' line");
  return k;
}

Result<std::set<std::string>> ReadAuthorizedKeys(const std::string& path) {
  GANTRY_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::set<std::string> keys;
  std::istringstream in(text);
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    line = Trim(line);
    if (line.empty() || line[0] == '#') continue;  // '#' is a Z85 character: comments start a line
    const std::string key = line.substr(0, line.find_first_of(" \t"));  // the rest is a comment
    if (!IsZ85Key(key)) {
      return Status::InvalidArgument(path + " line " + std::to_string(line_no) +
                                     ": expected a client public key (40 Z85 characters, the 'public = ' "
                                     "value of its client.key), optionally followed by a comment");
    }
    keys.insert(key);
  }
  return keys;
}

Result<CurveSettings> LoadServerCurve(const std::string& dir) {
  CurveSettings s;
  s.enabled = true;
  s.keys_dir = dir;
  auto server = ReadKeyFile(dir + "/" + kServerKeyFile);
  if (!server.ok()) {
    return server.status().WithContext("CURVE keys of the services in " + dir +
                                       " (`gantry up` with auth: curve creates them)");
  }
  if (server->secret_key.empty()) {
    return Status::InvalidArgument(dir + "/" + kServerKeyFile + " holds no 'secret = ...' line");
  }
  s.server = *server;
  s.server_public_key = server->public_key;
  auto client = ReadKeyFile(dir + "/" + kClientKeyFile);
  if (!client.ok()) return client.status().WithContext("the services' own client key");
  s.client = *client;
  s.authorized_keys_path = dir + "/" + kAuthorizedKeysFile;
  GANTRY_RETURN_IF_ERROR(ReadAuthorizedKeys(s.authorized_keys_path).status());
  return s;
}

Result<CurveSettings> LoadClientCurve(const std::string& dir) {
  CurveSettings s;
  s.enabled = true;
  s.keys_dir = dir;
  const std::string pub_path = dir + "/" + kServerPubFile;
  auto pub = PathExists(pub_path) ? ReadKeyFile(pub_path) : ReadKeyFile(dir + "/" + kServerKeyFile);
  if (!pub.ok()) {
    return Status::FailedPrecondition("CURVE keys in " + dir + ": no readable " + kServerPubFile +
                                      " (copy it from the cluster host's <data>/keys): " + pub.status().message());
  }
  s.server_public_key = pub->public_key;
  auto client = ReadKeyFile(dir + "/" + kClientKeyFile);
  if (!client.ok()) {
    return Status::FailedPrecondition("CURVE keys in " + dir + ": no usable " + kClientKeyFile +
                                      " (this client's pair; docs/operations.md \"Keys\"): " +
                                      client.status().message());
  }
  if (client->secret_key.empty()) {
    return Status::FailedPrecondition(dir + "/" + kClientKeyFile + " holds no 'secret = ...' line");
  }
  s.client = *client;
  return s;
}

Result<CurveSettings> ResolveClientCurve(const std::string& keys_flag, const std::string& data_dir,
                                         const std::string& run_file_auth) {
  std::string dir = keys_flag;
  if (dir.empty()) {
    if (const char* env = std::getenv(kKeysEnv); env && *env) dir = env;
  }
  if (dir.empty() && run_file_auth == "curve") {
    dir = data_dir + "/" + kKeysDirName;
    auto s = LoadClientCurve(dir);
    if (!s.ok()) {
      return Status::FailedPrecondition("the cluster in " + data_dir +
                                        " requires CURVE authentication (auth: curve), but " + s.status().message() +
                                        "; pass --keys DIR holding server.pub and client.key");
    }
    return s;
  }
  if (dir.empty()) return CurveSettings{};
  return LoadClientCurve(dir);
}

std::string RunFileAuth(const std::string& run_file) {
  auto text = ReadFile(run_file);
  if (!text.ok()) return "none";
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("auth") || !j["auth"].is_string()) return "none";
  return j["auth"].get<std::string>() == "curve" ? "curve" : "none";
}

Result<std::unique_ptr<ZapHandler>> SetUpServiceCurve(zmq::context_t& ctx, const std::string& auth,
                                                      const std::string& keys_dir, const std::string& data_dir) {
  if (auth == "none" || auth.empty()) {
    SetProcessCurve(CurveSettings{});
    return std::unique_ptr<ZapHandler>();
  }
  if (auth != "curve") return Status::InvalidArgument("--auth must be none or curve (got \"" + auth + "\")");
  std::string dir = keys_dir;
  if (dir.empty()) {
    dir = data_dir + "/" + kKeysDirName;
    GANTRY_RETURN_IF_ERROR(EnsureClusterKeys(dir));
  }
  GANTRY_ASSIGN_OR_RETURN(CurveSettings settings, LoadServerCurve(dir));
  GANTRY_ASSIGN_OR_RETURN(auto zap, ZapHandler::Start(ctx, settings.authorized_keys_path));
  SetProcessCurve(std::move(settings));
  spdlog::info("CURVE on: keys in {}, clients authorised by {}/{}", dir, dir, kAuthorizedKeysFile);
  return zap;
}

Status SetUpClientCurve(const std::string& keys_flag, const std::string& data_dir, const std::string& run_file_auth) {
  GANTRY_ASSIGN_OR_RETURN(CurveSettings s, ResolveClientCurve(keys_flag, data_dir, run_file_auth));
  if (s.enabled) spdlog::debug("CURVE client keys from {}", s.keys_dir);
  SetProcessCurve(std::move(s));
  return Status::Ok();
}

void SetProcessCurve(CurveSettings settings) {
  std::lock_guard lock(g_mu);
  g_settings = std::move(settings);
}

CurveSettings ProcessCurve() {
  std::lock_guard lock(g_mu);
  return g_settings;
}

bool ProcessCurveEnabled() {
  std::lock_guard lock(g_mu);
  return g_settings.enabled;
}

Status MakeCurveServer(zmq::socket_t& socket) { return MakeCurveServer(socket, ProcessCurve()); }

Status MakeCurveServer(zmq::socket_t& socket, const CurveSettings& s) {
  if (!s.enabled) return Status::Ok();
  if (!s.is_server()) {
    return Status::FailedPrecondition("CURVE is on but this process has no server key pair (" +
                                      std::string(kServerKeyFile) + "); only a service may bind");
  }
  if (g_zap_handlers.load() == 0) {
    return Status::FailedPrecondition(
        "CURVE server socket without a ZAP handler would accept every client that knows server.pub; start a "
        "ZapHandler on the socket's context first");
  }
  try {
    socket.set(zmq::sockopt::curve_server, 1);
    socket.set(zmq::sockopt::curve_secretkey, s.server.secret_key);
    socket.set(zmq::sockopt::zap_domain, "gantry");
  } catch (const zmq::error_t& e) {
    return Status::FailedPrecondition(std::string("enabling CURVE on a socket: ") + e.what() +
                                      " (libzmq without CURVE support?)");
  }
  return Status::Ok();
}

void MakeCurveClient(zmq::socket_t& socket) { MakeCurveClient(socket, ProcessCurve()); }

void MakeCurveClient(zmq::socket_t& socket, const CurveSettings& s) {
  if (!s.enabled) return;
  socket.set(zmq::sockopt::curve_serverkey, s.server_public_key);
  socket.set(zmq::sockopt::curve_publickey, s.client.public_key);
  socket.set(zmq::sockopt::curve_secretkey, s.client.secret_key);
}

bool IsLoopbackEndpoint(const std::string& endpoint) {
  if (endpoint.rfind("inproc://", 0) == 0 || endpoint.rfind("ipc://", 0) == 0) return true;
  std::string host = HostOf(endpoint);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

Status CheckBindAllowed(const std::string& endpoint, bool curve, const std::string& what) {
  if (curve || IsLoopbackEndpoint(endpoint)) return Status::Ok();
  return Status::InvalidArgument(what + " " + endpoint +
                                 " binds beyond loopback: start the service with CURVE authentication (--auth "
                                 "curve, or auth: curve in the cluster config) so that only clients with an "
                                 "authorised key reach it");
}

std::string DescribeHandshakeFailure(const std::string& endpoint, uint16_t event, uint32_t value,
                                     bool client_curve) {
  const std::string who = "refused by " + endpoint + ": ";
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
    return who + "this client's CURVE key is not in the cluster's authorized_keys (ZAP status " +
           std::to_string(value) + "); append the public key of its client.key to <data>/keys/authorized_keys "
           "on the cluster host (docs/operations.md, \"Keys\")";
  }
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
    if (client_curve) {
      return who + "the service does not use CURVE (auth: none) but this client does (--keys or " +
             std::string(kKeysEnv) + "); drop them for this cluster";
    }
    return who + "the service requires CURVE authentication (auth: curve); pass --keys DIR holding server.pub "
           "and client.key (or set " + kKeysEnv + "=DIR), or run on the cluster host";
  }
  char code[16];
  std::snprintf(code, sizeof code, "0x%08x", value);
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
    return who + "the CURVE handshake failed (protocol error " + code +
           "); is server.pub this cluster's current one (<data>/keys/server.pub on the cluster host)?";
  }
  const std::string closed =
      who + "the service closed the connection during the handshake (" + std::strerror(static_cast<int>(value)) + ")";
  if (client_curve) {
    return closed + ": is server.pub this cluster's current one (<data>/keys/server.pub on the cluster host)?";
  }
  return closed + ": the service probably requires CURVE authentication (auth: curve); pass --keys DIR holding "
         "server.pub and client.key (or set " + kKeysEnv + "=DIR), or run on the cluster host";
}

// --- ZapHandler ---

ZapHandler::ZapHandler(zmq::context_t& ctx, std::string path)
    : socket_(ctx, zmq::socket_type::rep), path_(std::move(path)) {
  socket_.set(zmq::sockopt::linger, 0);
}

Result<std::unique_ptr<ZapHandler>> ZapHandler::Start(zmq::context_t& ctx, std::string authorized_keys_path) {
  std::unique_ptr<ZapHandler> h(new ZapHandler(ctx, std::move(authorized_keys_path)));
  try {
    h->socket_.bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    return Status::FailedPrecondition(std::string("ZAP handler: binding ") + kZapEndpoint + ": " + e.what() +
                                      " (one ZAP handler per ZeroMQ context)");
  }
  h->wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (h->wake_fd_ < 0) return Status::Internal(std::string("eventfd: ") + std::strerror(errno));
  g_zap_handlers.fetch_add(1);
  h->thread_ = std::thread([p = h.get()] { p->Run(); });
  return h;
}

ZapHandler::~ZapHandler() { Stop(); }

void ZapHandler::Stop() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
    thread_.join();
    g_zap_handlers.fetch_sub(1);
  }
  if (wake_fd_ >= 0) {
    ::close(wake_fd_);
    wake_fd_ = -1;
  }
  socket_.close();
}

void ZapHandler::Run() {
  while (true) {
    zmq::pollitem_t items[2] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(-1));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      spdlog::error("ZAP handler: poll: {}; refusing new connections from now on", e.what());
      return;
    }
    if (items[1].revents & ZMQ_POLLIN) return;
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    std::vector<zmq::message_t> request;
    try {
      while (true) {
        zmq::message_t m;
        if (!socket_.recv(m, zmq::recv_flags::dontwait)) break;
        const bool more = m.more();
        if (request.size() < 16) request.push_back(std::move(m));
        if (!more) break;
      }
      if (!request.empty()) Answer(request);
    } catch (const zmq::error_t& e) {
      spdlog::warn("ZAP handler: {}", e.what());
    }
  }
}

void ZapHandler::Answer(std::vector<zmq::message_t>& req) {
  auto frame = [&](size_t i) { return i < req.size() ? req[i].to_string() : std::string(); };
  std::string code = "400";
  std::string text;
  std::string user;
  // RFC 27: version, request id, domain, address, routing id, mechanism,
  // credentials (CURVE: the client's 32-byte public key).
  if (req.size() < 6 || frame(0) != "1.0") {
    text = "malformed ZAP request";
  } else if (frame(5) != "CURVE" || req.size() != 7 || req[6].size() != 32) {
    text = "only CURVE clients with an authorised key are accepted";
  } else {
    char z85[41] = {};
    zmq_z85_encode(z85, static_cast<const uint8_t*>(req[6].data()), 32);
    if (Authorized(z85)) {
      code = "200";
      text = "OK";
      user = z85;
    } else {
      text = "client key not in authorized_keys";
      spdlog::warn("refused a CURVE client from {}: key {} is not in {}", frame(3), z85, path_);
    }
  }
  if (code == "200") {
    accepted_.fetch_add(1);
  } else {
    refused_.fetch_add(1);
    if (text != "client key not in authorized_keys") spdlog::info("refused a client from {}: {}", frame(3), text);
  }
  const std::string parts[] = {"1.0", frame(1), code, text, user, ""};
  for (size_t i = 0; i < 6; ++i) {
    socket_.send(zmq::buffer(parts[i]), i + 1 < 6 ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

bool ZapHandler::Authorized(const std::string& z85) {
  struct stat st {};
  std::string stamp = "missing";
  if (::stat(path_.c_str(), &st) == 0) {
    stamp = std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) +
            "." + std::to_string(st.st_mtim.tv_nsec);
  }
  if (stamp != keys_stamp_) {
    keys_stamp_ = stamp;
    auto keys = ReadAuthorizedKeys(path_);
    keys_ok_ = keys.ok();
    if (keys.ok()) {
      keys_ = std::move(keys).value();
      spdlog::info("authorized keys: {} client key(s) from {}", keys_.size(), path_);
    } else {
      keys_.clear();
      spdlog::error("authorized keys unreadable, refusing every client until fixed: {}", keys.status().ToString());
    }
  }
  return keys_ok_ && keys_.count(z85) > 0;
}

}  // namespace gantry
