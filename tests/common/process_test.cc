#include "common/process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "common/fs.h"
#include "tests/support/test_support.h"

namespace gantry {
namespace {

SpawnOptions Opts(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
                  std::string out = "") {
  SpawnOptions o;
  o.argv = std::move(argv);
  o.env = std::move(env);
  o.stdout_path = std::move(out);
  return o;
}

TEST(Process, ExitCodeAndOutput) {
  testing::TempDir dir;
  const std::string out = dir.File("out");
  auto c = ChildProcess::Spawn(Opts({"sh", "-c", "echo hello; echo err >&2; exit 3"}, {}, out));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ExitInfo e = c->Wait();
  EXPECT_EQ(e.exit_code, 3);
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(ReadFile(out).value(), "hello\nerr\n");
}

TEST(Process, MissingBinaryIsAnError) {
  auto c = ChildProcess::Spawn(Opts({"/nonexistent/gantry-binary"}));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("cannot run"), std::string::npos);
}

TEST(Process, TerminateKillsTheWholeGroup) {
  // The shell starts a grandchild that ignores SIGTERM; Terminate must
  // still leave nothing of the group alive.
  auto c = ChildProcess::Spawn(Opts({"sh", "-c", "sh -c 'trap \"\" TERM; exec sleep 1000' & wait"}));
  ASSERT_TRUE(c.ok());
  pid_t pgid = c->pid();
  ExitInfo e = c->Terminate(std::chrono::milliseconds(200));
  EXPECT_FALSE(e.ok());
  // Zombies left for init to reap may linger in the group; nothing may run.
  EXPECT_FALSE(GroupAlive(pgid)) << "process group " << pgid << " still has live members";
}

TEST(Process, EnvIsPassed) {
  testing::TempDir dir;
  const std::string out = dir.File("out");
  auto c = ChildProcess::Spawn(Opts({"sh", "-c", "printf %s \"$GANTRY_X\""}, {{"GANTRY_X", "42"}}, out));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->Wait().ok());
  EXPECT_EQ(ReadFile(out).value(), "42");
}

}  // namespace
}  // namespace gantry
