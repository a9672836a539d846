// gantry keygen DIR: a CURVE client key pair for a client on another host
// (docs/operations.md, "Keys").
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "cli/commands.h"
#include "common/curve.h"
#include "common/fs.h"

namespace gantry::cli {
namespace {

int Keygen(const std::string& dir) {
  const std::string path = dir + "/" + kClientKeyFile;
  if (PathExists(path)) {
    return Fail(Status::AlreadyExists(path + " exists; keygen never replaces a key (delete it first to rotate)"));
  }
  if (!PathExists(dir)) {
    if (Status s = MakeDirs(dir); !s.ok()) return Fail(s);
    if (::chmod(dir.c_str(), 0700) != 0) {
      return Fail(Status::Unavailable("chmod 700 " + dir + ": " + std::strerror(errno)));
    }
  }
  auto pair = GenerateCurveKeyPair();
  if (!pair.ok()) return Fail(pair.status());
  const std::string text = "# Gantry CURVE client key pair (ZeroMQ Z85); keep it mode 0600\npublic = " +
                           pair->public_key + "\nsecret = " + pair->secret_key + "\n";
  if (Status s = WriteFileAtomic(path, text, 0600); !s.ok()) return Fail(s);
  std::cout << "wrote " << path << "\n"
            << "public key: " << pair->public_key << "\n"
            << "next: append that key to <data>/keys/authorized_keys on the cluster host, copy its "
            << kServerPubFile << " into " << dir << ", then run gantry --keys " << dir << " status\n";
  return 0;
}

}  // namespace

void AddKeysCommand(CLI::App& app, Context&, Action& action) {
  auto dir = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("keygen", "Make a CURVE client key pair (client.key) for a cluster with auth: curve");
  cmd->add_option("dir", *dir, "Keys folder (created with mode 0700); use it with --keys or GANTRY_KEYS")
      ->required();
  cmd->callback([&action, dir] { action = [dir] { return Keygen(*dir); }; });
}

}  // namespace gantry::cli
