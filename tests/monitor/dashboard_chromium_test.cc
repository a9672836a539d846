// The dashboard page in headless Chromium (Debian `chromium`) against
// dashboard_test_server (canned data, free port): the page lists the jobs,
// draws the selected job's chart, and a point pushed after the page loaded
// appears without a reload. Chromium is driven over the DevTools protocol
// (--remote-debugging-port=0, a Beast websocket client, Runtime.evaluate);
// every wait polls with a deadline. Chromium and the server run in their own
// process groups and are killed at the end; the test checks that no process
// using its Chromium profile is left. Skips when chromium is not installed.
//
// GANTRY_DASHBOARD_SCREENSHOT=<file.png> also saves a screenshot of the page
// after the push (Page.captureScreenshot).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/beast/websocket.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/monitor/http_test_client.h"
#include "tests/support/test_support.h"

namespace gantry::http {
namespace {

using namespace std::chrono_literals;
using gantry::testing::TempDir;
using gantry::testing::WaitFor;
using nlohmann::json;
using testing::Fetch;

constexpr const char* kToken = "dashboard-test-token";

std::string FindChromium() {
  if (const char* env = std::getenv("GANTRY_CHROMIUM"); env && *env) return env;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    for (const char* name : {"chromium", "chromium-browser"}) {
      const std::string p = dir + "/" + name;
      if (::access(p.c_str(), X_OK) == 0) return p;
    }
  }
  return "";
}

// A child process in its own process group; the whole group is killed (and
// the child reaped) on destruction. stdout goes to a pipe (read with
// ReadLine) or, with `log`, to that file, stderr to `log` or /dev/null.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& log, bool pipe_stdout) {
    int fds[2] = {-1, -1};
    if (pipe_stdout && ::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      const int out = log.empty() ? ::open("/dev/null", O_WRONLY)
                                  : ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (pipe_stdout) {
        ::dup2(fds[1], 1);
        ::close(fds[0]);
        ::close(fds[1]);
      } else {
        ::dup2(out, 1);
      }
      ::dup2(out, 2);
      const int in = ::open("/dev/null", O_RDONLY);
      ::dup2(in, 0);
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    if (pid_ > 0) ::setpgid(pid_, pid_);  // also here: no race with the kill
    if (pipe_stdout) {
      ::close(fds[1]);
      out_fd_ = fds[0];
    }
  }
  ~Child() {
    Kill();
    if (out_fd_ >= 0) ::close(out_fd_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // One line of stdout, or nullopt at EOF or after `timeout`.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string line;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_fd_, POLLIN, 0};
      const int left = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
      if (::poll(&p, 1, std::max(left, 1)) <= 0) continue;
      char c;
      if (::read(out_fd_, &c, 1) != 1) return std::nullopt;
      if (c == '\n') return line;
      line += c;
    }
    return std::nullopt;
  }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
};

// Processes whose command line mentions `needle` (our unique profile path).
std::vector<pid_t> ProcessesMentioning(const std::string& needle) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream f(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (cmdline.find(needle) != std::string::npos) found.push_back(std::stoi(name));
  }
  return found;
}

// A DevTools protocol session on one page target.
class Cdp {
 public:
  Cdp(uint16_t port, const std::string& path) : ws_(ioc_) {
    boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), port);
    ws_.next_layer().connect(ep);
    timeval tv{10, 0};  // a read never blocks the test for longer
    ::setsockopt(ws_.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ws_.handshake("127.0.0.1:" + std::to_string(port), path);
  }

  // Sends a command and returns its "result" (or the error object as {"error": ...}).
  json Call(const std::string& method, json params) {
    const int id = ++next_id_;
    ws_.write(boost::asio::buffer(json{{"id", id}, {"method", method}, {"params", std::move(params)}}.dump()));
    for (;;) {
      boost::beast::flat_buffer buf;
      ws_.read(buf);
      json m = json::parse(boost::beast::buffers_to_string(buf.data()), nullptr, false);
      if (!m.is_object() || m.value("id", -1) != id) continue;  // an event
      if (m.contains("error")) return json{{"error", m["error"]}};
      return m.value("result", json::object());
    }
  }

  // The value of a JavaScript expression (null when it throws).
  json Eval(const std::string& expression) {
    json r = Call("Runtime.evaluate", {{"expression", expression}, {"returnByValue", true}});
    if (r.contains("exceptionDetails") || !r.contains("result")) return nullptr;
    return r["result"].value("value", json());
  }

 private:
  boost::asio::io_context ioc_;
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_;
  int next_id_ = 0;
};

std::string Base64Decode(const std::string& in) {
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int bits = 0, acc = 0;
  for (char c : in) {
    const size_t v = kAlphabet.find(c);
    if (v == std::string::npos) continue;  // '=' and line breaks
    acc = (acc << 6) | static_cast<int>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

TEST(DashboardChromium, ListsJobsDrawsChartAndAppendsPushedPoint) {
  const std::string chromium = FindChromium();
  if (chromium.empty()) GTEST_SKIP() << "chromium not installed (apt-get install chromium)";
  TempDir dir;

  Child server({GANTRY_DASHBOARD_TEST_SERVER}, dir.File("server.log"), /*pipe_stdout=*/true);
  ASSERT_GT(server.pid(), 0);
  const auto port_line = server.ReadLine(20s);
  ASSERT_TRUE(port_line.has_value()) << "dashboard_test_server printed no port";
  const uint16_t port = static_cast<uint16_t>(std::stoi(*port_line));
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";

  const std::string profile = dir.File("chromium-profile");
  Child browser({chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,900", "--remote-debugging-address=127.0.0.1",
                 "--remote-debugging-port=0", "--user-data-dir=" + profile, url},
                dir.File("chromium.log"), /*pipe_stdout=*/false);
  ASSERT_GT(browser.pid(), 0);

  // Chromium writes its DevTools port into the profile once it listens.
  uint16_t devtools_port = 0;
  ASSERT_TRUE(WaitFor([&] {
    std::ifstream f(profile + "/DevToolsActivePort");
    int p = 0;
    if (f >> p && p > 0) devtools_port = static_cast<uint16_t>(p);
    return devtools_port != 0;
  }, 60s)) << "no DevToolsActivePort; see " << dir.File("chromium.log");

  std::string page_path;
  ASSERT_TRUE(WaitFor([&] {
    auto r = Fetch(devtools_port, "GET", "/json/list");
    json targets = json::parse(r.body, nullptr, false);
    if (!targets.is_array()) return false;
    for (const json& t : targets) {
      if (t.value("type", "") == "page" && t.value("url", "").rfind(url, 0) == 0) {
        const std::string ws = t.value("webSocketDebuggerUrl", "");
        const size_t at = ws.find("/devtools/");
        if (at != std::string::npos) page_path = ws.substr(at);
      }
    }
    return !page_path.empty();
  }, 30s)) << "no page target for " << url;

  {
    Cdp cdp(devtools_port, page_path);
    auto poll = [&](const std::string& expr, std::chrono::milliseconds timeout = 30s) {
      json last;
      const bool ok = WaitFor([&] {
        last = cdp.Eval(expr);
        if (last.is_boolean()) return last.get<bool>();
        std::this_thread::sleep_for(20ms);  // pacing only; the deadline decides
        return false;
      }, timeout);
      return ok;
    };

    // 1. The page lists the jobs, with their states.
    EXPECT_TRUE(poll(R"(!!document.querySelector('#jobs tr[data-job-id="job-a"] .badge.state-running'))"));
    EXPECT_TRUE(poll(R"(!!document.querySelector('#jobs tr[data-job-id="job-b"] .badge.state-succeeded'))"));
    EXPECT_TRUE(poll("document.querySelector('#alerts tr[data-rule=\"straggler\"]') !== null"));
    EXPECT_TRUE(poll("document.querySelector('#drift tbody tr.drifted') !== null"));
    EXPECT_TRUE(poll(R"((() => { const r = document.querySelector('#deployments tr[data-deployment="fashion-prod"]');)"
                     R"(  return !!r && r.textContent.includes('87.4%') && r.textContent.includes('v3'); })())"));

    // 2. It draws the first job's charts: canvases, and the points recorded.
    const std::string loss_drawn =
        "(() => { const c = document.getElementById('chart-loss');"
        "  return !!c.querySelector('canvas') && Number(c.dataset.points) > 0"
        "    && c.dataset.job === 'job-a' && c.dataset.lastStep === '300'; })()";
    ASSERT_TRUE(poll(loss_drawn)) << cdp.Eval("document.getElementById('chart-loss').outerHTML.slice(0, 400)");
    EXPECT_TRUE(poll("!!document.querySelector('#chart-ranks canvas')"
                     "  && Number(document.getElementById('chart-ranks').dataset.points) > 0"));
    EXPECT_TRUE(poll("document.body.dataset.sse === 'open'"));
    const json before = cdp.Eval("Number(document.getElementById('chart-loss').dataset.points)");
    ASSERT_TRUE(before.is_number());
    // A marker that a reload would wipe.
    cdp.Eval("window.__gantryNoReload = 42");

    // 3. A point pushed now reaches the chart without a reload.
    auto pushed = Fetch(port, "POST", "/test/push", {{"authorization", std::string("Bearer ") + kToken}});
    ASSERT_EQ(pushed.status, 200) << pushed.body;
    const int step = json::parse(pushed.body).at("step").get<int>();
    EXPECT_EQ(step, 310);
    EXPECT_TRUE(poll("(() => { const c = document.getElementById('chart-loss');"
                     "  return c.dataset.lastStep === '" + std::to_string(step) + "' && Number(c.dataset.points) > " +
                     std::to_string(before.get<int>()) + "; })()"))
        << cdp.Eval("JSON.stringify(document.getElementById('chart-loss').dataset)");
    EXPECT_TRUE(
        poll(R"(document.querySelector('#jobs tr[data-job-id="job-a"] .step').textContent.startsWith('310 '))"));
    EXPECT_EQ(cdp.Eval("window.__gantryNoReload"), json(42)) << "the page was reloaded";

    // Job states and alerts arrive by push too.
    const std::map<std::string, std::string> auth = {{"authorization", std::string("Bearer ") + kToken}};
    ASSERT_EQ(Fetch(port, "POST", "/test/event", auth,
                    R"({"event":"job_state","data":{"job_id":"job-a","state":"preempted","attempt":3,)"
                    R"("reason":"node lost"}})")
                  .status, 200);
    EXPECT_TRUE(poll(R"(!!document.querySelector('#jobs tr[data-job-id="job-a"] .badge.state-preempted'))"));
    ASSERT_EQ(Fetch(port, "POST", "/test/event", auth,
                    R"({"event":"alert","data":{"rule":"no_progress","job_id":"job-a","rank":-1,"state":"pending",)"
                    R"("why":"no step for 600 s","severity":"warning"}})")
                  .status, 200);
    EXPECT_TRUE(poll(R"(!!document.querySelector('#alerts tr[data-rule="no_progress"] .badge.state-pending'))"));

    // NaN (null) and infinite ("+Inf") values, as the API encodes them, leave
    // gaps and break nothing.
    ASSERT_EQ(Fetch(port, "POST", "/test/event", auth,
                    R"({"event":"point","data":{"job_id":"job-a","rank":0,"attempt":3,"step":320,)"
                    R"("values":{"loss":null,"accuracy":"+Inf","samples_per_sec":5000}}})")
                  .status, 200);
    EXPECT_TRUE(poll("(() => { const t = document.getElementById('chart-throughput');"
                     "  return t.dataset.lastStep === '320' && !!t.querySelector('canvas'); })()"));
    EXPECT_EQ(cdp.Eval("document.getElementById('chart-loss').dataset.lastStep"), json("320"));

    // 4. Ticking a second job overlays its curves on the same charts.
    cdp.Eval(R"(document.querySelector('#jobs tr[data-job-id="job-b"] input[type=checkbox]').click())");
    EXPECT_TRUE(poll("(() => { const c = document.getElementById('chart-loss');"
                     "  return c.dataset.job === 'job-a,job-b' && !!c.querySelector('canvas')"
                     "    && document.getElementById('legend-loss').textContent.includes('job-b loss'); })()"))
        << cdp.Eval("JSON.stringify(document.getElementById('chart-loss').dataset)");

    // 5. The wall-time axis draws the same points.
    cdp.Eval("(() => { const x = document.getElementById('x-axis'); x.value = 'wall';"
             "  x.dispatchEvent(new Event('change')); })()");
    EXPECT_TRUE(poll("(() => { const c = document.getElementById('chart-loss');"
                     "  return location.hash.includes('x=wall') && !!c.querySelector('canvas')"
                     "    && Number(c.dataset.points) > " + std::to_string(before.get<int>()) + "; })()"))
        << cdp.Eval("JSON.stringify(document.getElementById('chart-loss').dataset)");

    // 6. Smoothing is TensorBoard's debiased EMA: s_t = w s_{t-1} + (1-w) x_t,
    // shown as s_t / (1 - w^t); non-finite values pass through uncounted.
    const json smoothed = cdp.Eval("window.gantrySmooth([0, 10, NaN, 10], 0.5).map(v => Number.isNaN(v) ? 'nan' : v)");
    ASSERT_TRUE(smoothed.is_array() && smoothed.size() == 4) << smoothed;
    EXPECT_DOUBLE_EQ(smoothed[0].get<double>(), 0.0);
    EXPECT_NEAR(smoothed[1].get<double>(), 5.0 / 0.75, 1e-12);
    EXPECT_EQ(smoothed[2], json("nan"));
    EXPECT_NEAR(smoothed[3].get<double>(), 7.5 / 0.875, 1e-12);
    // Debiased: a constant series stays that constant from the first point.
    const json flat = cdp.Eval("Math.max(...window.gantrySmooth([3, 3, 3], 0.9).map(v => Math.abs(v - 3)))");
    ASSERT_TRUE(flat.is_number()) << flat;
    EXPECT_LT(flat.get<double>(), 1e-12);

    EXPECT_EQ(cdp.Eval("JSON.stringify(window.gantryDashboard.errors)"), json("[]")) << "script errors on the page";

    if (const char* shot = std::getenv("GANTRY_DASHBOARD_SCREENSHOT"); shot && *shot) {
      json r = cdp.Call("Page.captureScreenshot", {{"format", "png"}});
      std::ofstream(shot, std::ios::binary) << Base64Decode(r.value("data", ""));
    }
  }

  // Chromium and every process it started are gone.
  browser.Kill();
  std::vector<pid_t> left;
  const bool gone = WaitFor([&] {
    left = ProcessesMentioning(profile);
    return left.empty();
  }, 10s);
  for (pid_t pid : left) ::kill(pid, SIGKILL);  // ours (our profile path); do not leak them
  EXPECT_TRUE(gone) << left.size() << " chromium processes outlived their process group";
  server.Kill();
}

}  // namespace
}  // namespace gantry::http
