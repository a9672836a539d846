#include "cli/supervisor.h"

#include <algorithm>

namespace gantry::cli {

const char* ServiceStateName(ServiceState s) {
  switch (s) {
    case ServiceState::kPending: return "pending";
    case ServiceState::kRunning: return "running";
    case ServiceState::kBackoff: return "restarting";
    case ServiceState::kStopped: return "stopped";
    case ServiceState::kCrashLoop: return "crash-loop";
  }
  return "?";
}

Supervisor::Supervisor(Clock& clock, ProcessStarter& starter, SupervisorPolicy policy,
                       std::vector<std::string> services)
    : clock_(clock), starter_(starter), policy_(policy) {
  for (auto& s : services) {
    records_.emplace_back();
    records_.back().name = s;
  }
}

ServiceRecord& Supervisor::Get(const std::string& service) {
  for (auto& r : records_) {
    if (r.name == service) return r;
  }
  records_.emplace_back();
  records_.back().name = service;
  return records_.back();
}

const ServiceRecord* Supervisor::Find(const std::string& service) const {
  for (auto& r : records_) {
    if (r.name == service) return &r;
  }
  return nullptr;
}

void Supervisor::Adopt(const std::string& service, pid_t pid) {
  ServiceRecord& r = Get(service);
  r.state = ServiceState::kRunning;
  r.pid = pid;
  r.adopted = true;
  r.started_at = clock_.Now();
}

bool Supervisor::TryStart(ServiceRecord& r, bool restart) {
  if (restart) r.recent.push_back(clock_.Now());
  auto pid = starter_.Start(r.name);
  if (!pid.ok()) {
    r.last_error = pid.status().message();
    r.pid = 0;
    Failed(r);
    return false;
  }
  r.state = ServiceState::kRunning;
  r.pid = *pid;
  r.adopted = false;
  r.last_error.clear();
  r.started_at = clock_.Now();
  if (restart) ++r.restarts;
  return true;
}

Status Supervisor::StartPending() {
  for (auto& r : records_) {
    if (r.state != ServiceState::kPending) continue;
    if (!TryStart(r, /*restart=*/false)) {
      return Status::Unavailable(r.last_error);
    }
  }
  return Status::Ok();
}

void Supervisor::Failed(ServiceRecord& r) {
  auto now = clock_.Now();
  while (!r.recent.empty() && now - r.recent.front() > policy_.window) r.recent.pop_front();
  if (static_cast<int>(r.recent.size()) >= policy_.max_restarts) {
    r.state = ServiceState::kCrashLoop;
    return;
  }
  ++r.failures;
  auto backoff = policy_.initial_backoff;
  for (int i = 1; i < r.failures && backoff < policy_.max_backoff; ++i) backoff *= 2;
  backoff = std::min(backoff, policy_.max_backoff);
  r.state = ServiceState::kBackoff;
  r.next_start = now + backoff;
}

void Supervisor::OnExit(ServiceRecord& r, const ExitInfo& e) {
  r.last_exit = e;
  r.last_exit_wall = clock_.WallSeconds();
  r.pid = 0;
  if (e.ok()) {  // stopped on purpose: Restart=on-failure leaves it down
    r.state = ServiceState::kStopped;
    return;
  }
  if (clock_.Now() - r.started_at >= policy_.stable_after) r.failures = 0;
  Failed(r);
}

bool Supervisor::Tick() {
  bool changed = false;
  for (auto& r : records_) {
    if (r.state == ServiceState::kRunning) {
      if (auto e = starter_.Poll(r.name)) {
        OnExit(r, *e);
        changed = true;
      }
    }
    if (r.state == ServiceState::kBackoff && clock_.Now() >= r.next_start) {
      TryStart(r, /*restart=*/true);
      changed = true;
    }
  }
  return changed;
}

void Supervisor::Reset() {
  for (auto& r : records_) {
    if (r.state == ServiceState::kCrashLoop || r.state == ServiceState::kBackoff ||
        r.state == ServiceState::kStopped) {
      r.state = ServiceState::kBackoff;
      r.next_start = clock_.Now();
      r.failures = 0;
      r.recent.clear();
    }
  }
}

bool Supervisor::AllStopped() const {
  return std::all_of(records_.begin(), records_.end(),
                     [](const ServiceRecord& r) { return r.state == ServiceState::kStopped; });
}

}  // namespace gantry::cli
