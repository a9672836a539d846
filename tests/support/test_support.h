// Helpers shared by the tests: a temp folder, deadline polling, and a
// spawned daemon found through its run file.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

namespace gantry::testing {

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it.
// The one temporary folder of all tests: every file a test creates goes in
// one, so nothing is left behind.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/gantry-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp " << tmpl;
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // path()/name.
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Polls `done` every few milliseconds until it holds or `timeout` passes.
inline bool WaitFor(const std::function<bool()>& done,
                    std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

// $GANTRY_BIN_DIR, else the build's bin/ when the test was compiled with it.
inline std::string BinDir() {
  const char* dir = std::getenv("GANTRY_BIN_DIR");
  if (dir && *dir) return dir;
#ifdef GANTRY_TEST_BIN_DIR
  return GANTRY_TEST_BIN_DIR;
#else
  return "";
#endif
}

}  // namespace gantry::testing
