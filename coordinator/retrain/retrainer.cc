#include "coordinator/retrain/retrainer.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace gantry::coordinator {

double ToSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

namespace {

std::chrono::system_clock::time_point FromSeconds(double s) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(s)));
}

}  // namespace

Status Retrainer::Tick(TimePoint now) {
  GANTRY_ASSIGN_OR_RETURN(auto schedules, store_.List());
  Status first;
  for (const ScheduleRecord& record : schedules) {
    Status st = TickOne(record, now);
    if (!st.ok()) {
      spdlog::warn("schedule {}: {}", record.spec.name, st.ToString());
      if (first.ok()) first = st.WithContext("schedule " + record.spec.name);
    }
  }
  return first;
}

Status Retrainer::TriggerNow(const std::string& name, TimePoint now) {
  GANTRY_RETURN_IF_ERROR(store_.Get(name).status());
  Coalescer(name).Fire({TriggerKind::kManual, "gantry schedule trigger", now});
  return Status::Ok();
}

void Retrainer::OnAlert(const AlertSignal& alert, TimePoint now) {
  auto schedules = store_.List();
  if (!schedules.ok()) {
    spdlog::warn("alert {} not matched to schedules: {}", alert.rule, schedules.status().ToString());
    return;
  }
  for (const ScheduleRecord& r : *schedules) {
    const ScheduleSpec& s = r.spec;
    const bool same_model = alert.model.empty() || alert.model == s.model;
    const bool watched = s.new_data && !alert.source.empty() && alert.source == s.new_data->dir;
    const bool drift = s.on_drift && alert.kind == "drift" && (alert.model == s.model || watched);
    const bool named = same_model && std::find(s.on_alerts.begin(), s.on_alerts.end(), alert.rule) != s.on_alerts.end();
    if (!drift && !named) continue;
    Coalescer(s.name).Fire({drift ? TriggerKind::kDrift : TriggerKind::kMetric,
                            "alert " + alert.rule + (alert.why.empty() ? "" : ": " + alert.why), now});
  }
}

Status Retrainer::TickOne(const ScheduleRecord& record, TimePoint now) {
  const ScheduleSpec& spec = record.spec;
  GANTRY_ASSIGN_OR_RETURN(auto active, store_.ActiveRun(spec.name));
  if (active) return Settle(record, *active, now);
  RunCoalescer& coalescer = Coalescer(spec.name);
  if (record.paused) {
    // A paused schedule forgets alerts; cron and new data are looked at
    // afresh when it resumes.
    while (coalescer.Start()) coalescer.Finished();
    return Status::Ok();
  }

  bool cron_fired = false;
  if (spec.cron) {
    const double last = record.last_cron_at.value_or(record.created_at);
    if (spec.cron->Due(FromSeconds(last), now)) {
      coalescer.Fire({TriggerKind::kCron, "cron " + spec.cron->expression() + " (" + spec.cron->time_zone() + ")", now});
      cron_fired = true;
    }
  }
  RunPlan plan;
  if (spec.new_data) {
    GANTRY_ASSIGN_OR_RETURN(auto listing, ports_.ListData(spec.new_data->dir));
    GANTRY_ASSIGN_OR_RETURN(auto used, store_.UsedFiles(spec.name));
    NewDataTracker tracker(spec.new_data->thresholds, std::move(used));
    if (auto t = tracker.Check(listing, now)) coalescer.Fire(*t);
    // Whatever starts the run, it trains on every file not used yet.
    for (const DataFile& f : tracker.Pending(listing)) plan.new_files.push_back(f.name);
  }
  auto triggers = coalescer.Start();
  if (!triggers) return Status::Ok();
  plan.triggers = *triggers;

  auto fail = [&](Status st) {
    // Keep the triggers for the next tick: nothing started.
    coalescer.Finished();
    for (const Trigger& t : plan.triggers) {
      if (t.kind != TriggerKind::kCron && t.kind != TriggerKind::kNewData) coalescer.Fire(t);
    }
    return st;
  };
  auto champion = ports_.ResolveAlias(spec.model, spec.champion);
  if (!champion.ok()) return fail(champion.status().WithContext("resolving " + spec.model + "@" + spec.champion));
  plan.champion_version = *champion;
  auto job = ports_.SubmitRun(spec, plan);
  if (!job.ok()) return fail(job.status().WithContext("submitting the run"));
  auto seq = store_.StartRun(spec.name, *job, plan.triggers, plan.new_files, ToSeconds(now));
  if (!seq.ok()) return fail(seq.status());
  coalescer.Finished();  // the store now says a run is going
  spdlog::info("schedule {}: run {} started as job {} ({} trigger(s), {} new file(s))", spec.name, *seq, *job,
               plan.triggers.size(), plan.new_files.size());
  if (cron_fired) GANTRY_RETURN_IF_ERROR(store_.SetLastCron(spec.name, ToSeconds(now)));
  return Status::Ok();
}

Status Retrainer::Settle(const ScheduleRecord& record, const RunRecord& run, TimePoint now) {
  const ScheduleSpec& spec = record.spec;
  GANTRY_ASSIGN_OR_RETURN(RunOutcome outcome, ports_.PollRun(run.job_id));
  if (!outcome.finished) return Status::Ok();
  const double t = ToSeconds(now);
  if (!outcome.succeeded) {
    return store_.FinishRun(run.seq, RunState::kFailed, std::nullopt,
                            "job " + run.job_id + " did not succeed: " + outcome.error, t);
  }
  if (!outcome.challenger) {
    return store_.FinishRun(run.seq, RunState::kFailed, std::nullopt,
                            "job " + run.job_id + " saved no evaluated version", t);
  }
  GateDecision gate = DecidePromotion(spec.gate, outcome.champion, *outcome.challenger);
  RunDecision d;
  d.promote = gate.promote;
  d.reason = gate.reason;
  d.metric = spec.gate.metric;
  d.challenger_version = outcome.challenger->version;
  if (outcome.champion) d.champion_version = outcome.champion->version;
  d.champion_value = gate.champion_value;
  d.challenger_value = gate.challenger_value;
  d.data_fingerprint = outcome.data_fingerprint;
  if (!gate.promote) return store_.FinishRun(run.seq, RunState::kRejected, d, "", t);
  Status moved = ports_.MoveAlias(spec.model, spec.champion, outcome.challenger->version);
  if (!moved.ok()) {
    d.promote = false;
    return store_.FinishRun(run.seq, RunState::kFailed, d, "promotion failed: " + moved.ToString(), t);
  }
  spdlog::info("schedule {}: {}@{} -> v{} ({})", spec.name, spec.model, spec.champion, outcome.challenger->version,
               gate.reason);
  return store_.FinishRun(run.seq, RunState::kPromoted, d, "", t);
}

}  // namespace gantry::coordinator
