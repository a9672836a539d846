#include "cli/render.h"

#include <cstdio>
#include <ctime>

#include "cli/context.h"

namespace gantry::cli {

std::string FormatBytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", b, units[u]);
  return buf;
}

std::string FormatNumber(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", x);
  return buf;
}

std::string FormatMetrics(const json& m) {
  std::string out;
  if (!m.is_object()) return "-";
  for (const auto& [k, v] : m.items()) {
    if (!v.is_number()) continue;
    out += (out.empty() ? "" : " ") + k + "=" + FormatNumber(v.get<double>());
  }
  return out.empty() ? "-" : out;
}

std::string FormatLabels(const json& v) {
  std::string out;
  for (const auto& a : v.value("aliases", json::array())) out += (out.empty() ? "" : ",") + a.get<std::string>();
  for (const auto& t : v.value("tags", json::array())) {
    out += (out.empty() ? "#" : ",#") + t["tag"].get<std::string>() + (t.value("protect", false) ? "!" : "");
  }
  return out.empty() ? "-" : out;
}

std::pair<std::string, std::string> SplitRef(const std::string& s) {
  size_t at = s.find('@');
  if (at == std::string::npos) return {s, "latest"};
  return {s.substr(0, at), s.substr(at + 1)};
}

std::string FormatTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) {
      out += cells[i];
      if (i + 1 < cells.size() && i < width.size()) out += std::string(width[i] - cells[i].size() + 2, ' ');
    }
    out += "\n";
  };
  line(header);
  for (const auto& r : rows) line(r);
  return out;
}

std::string JobDuration(const json& j) {
  double start = j.value("started_at", 0.0), end = j.value("finished_at", 0.0);
  if (start <= 0) return "-";
  if (end <= 0) end = static_cast<double>(std::time(nullptr));
  return FormatDuration(end - start);
}

Status CheckRequestFits(const json& ping, uint64_t request_bytes, const std::string& what) {
  auto it = ping.find("max_message_bytes");
  if (it == ping.end() || !it->is_number_integer() || it->get<int64_t>() <= 0) return Status::Ok();
  const auto limit = it->get<uint64_t>();
  if (request_bytes <= limit) return Status::Ok();
  return Status::InvalidArgument(what + " needs a request of " + FormatBytes(static_cast<double>(request_bytes)) +
                                 " but the " + ping.value("service", std::string("service")) +
                                 " accepts at most " + FormatBytes(static_cast<double>(limit)) +
                                 " (start it with a larger --max-message-mb)");
}

std::string EstimatedStart(const json& j, double now) {
  const std::string state = j.value("state", "");
  if (state != "QUEUED" && state != "PREEMPTED" && state != "RESTARTING") return "-";
  auto it = j.find("estimated_start");
  if (it == j.end() || !it->is_number()) return "unknown";
  const double in = it->get<double>() - now;
  return in <= 0 ? "now" : "in " + FormatDuration(in);
}

void RenderJobs(const json& r, std::ostream& out) {
  std::vector<std::vector<std::string>> rows;
  const double now = static_cast<double>(std::time(nullptr));
  for (const auto& j : r.at("jobs")) {
    rows.push_back({j["job_id"], j["name"], j["state"], std::to_string(j["workers"].get<int>()),
                    std::to_string(j["attempt"].get<int>()), FormatTime(j["submitted_at"]), JobDuration(j),
                    EstimatedStart(j, now), j["reason"]});
  }
  if (rows.empty()) {
    out << "no jobs yet; submit one with `gantry submit configs/jobs/fashion_mnist.yaml`\n";
    return;
  }
  out << FormatTable({"ID", "NAME", "STATE", "WORKERS", "ATTEMPT", "SUBMITTED", "DURATION", "START", "REASON"}, rows);
}

void RenderJob(const json& r, std::ostream& out) {
  const json& j = r.at("job");
  const json& spec = r.at("spec");
  out << "Job " << j["job_id"].get<std::string>() << " (" << j["name"].get<std::string>() << ")\n"
      << "  state      " << j["state"].get<std::string>() << " - " << j["reason"].get<std::string>() << "\n"
      << "  priority   " << j["priority"] << "\n"
      << "  workers    " << j["workers"] << " x " << spec["resources"]["slots_per_worker"] << " slot ("
      << spec["resources"]["device"].get<std::string>() << ")\n"
      << "  model      " << spec["model"]["builtin"].get<std::string>() << " -> checkpoints of '"
      << j["model"].get<std::string>() << "'\n"
      << "  data       " << spec["data"]["path"].get<std::string>() << "\n"
      << "  submitted  " << FormatTime(j["submitted_at"]) << "\n"
      << "  started    " << FormatTime(j["started_at"]) << "\n"
      << "  finished   " << FormatTime(j["finished_at"]) << "  (ran " << JobDuration(j) << ")\n"
      << "  job dir    " << r["job_dir"].get<std::string>() << "\n";
  if (j.contains("gpus") && j["gpus"].is_array()) {
    out << "  gpus      ";
    int rank = 0;
    for (const auto& g : j["gpus"]) out << " rank " << rank++ << ": " << g.get<std::string>();
    out << "  (CUDA_VISIBLE_DEVICES)\n";
  }
  if (j.value("max_runtime", 0.0) > 0) out << "  max run    " << FormatDuration(j["max_runtime"].get<double>()) << "\n";
  if (j.contains("estimated_start") && j["estimated_start"].is_number()) {
    out << "  est start  " << FormatTime(j["estimated_start"]) << "\n";
  }
  if (r.contains("progress")) {
    out << "  progress  ";
    for (const auto& p : r["progress"]["ranks"]) {
      out << " rank " << p["rank"] << " step " << p["step"] << " ("
          << FormatDuration(p["seconds_since_heartbeat"].get<double>()) << " ago)";
    }
    if (r["progress"]["ranks"].empty()) out << " no heartbeat yet";
    out << "\n";
  }
  const json& attempts = r.at("attempts");
  if (!attempts.empty()) {
    out << "Attempts:\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& a : attempts) {
      std::string outcome = a["outcome"].get<std::string>().empty() ? "running" : a["outcome"].get<std::string>();
      rows.push_back({"  " + std::to_string(a["attempt"].get<int>()), outcome, FormatTime(a["started_at"]),
                      FormatTime(a["ended_at"]), a["message"], a["log_dir"]});
    }
    out << FormatTable({"  #", "OUTCOME", "STARTED", "ENDED", "MESSAGE", "LOGS"}, rows);
  }
}

}  // namespace gantry::cli
