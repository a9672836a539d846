// ScheduleSpec: a retraining schedule as its YAML file declares it
// (docs/retraining.md, "Schedules").
//
//   name: fmnist-nightly            # schedule name
//   model: fmnist                   # registry model; default: the job's checkpoint model
//   champion: production            # the alias a better run takes
//   job: {...} | job: train.yaml    # the job template (a job spec, inline or a file)
//   triggers:
//     cron: "0 3 * * *"             # five fields
//     time_zone: Europe/Berlin      # default UTC
//     new_data: {dir: /data/incoming, min_files: 1, min_samples: 0}
//     drift: true                   # a drift alert for the model
//     alerts: [live-accuracy-low]   # alert rules (e.g. on serving feedback) by name
//   replay: 0.2                     # share of older training data mixed into a run
//   evaluation:
//     metric: accuracy
//     higher_is_better: true
//     margin: 0.005
//     floor: 0.8                    # needed to promote a first model
//     guardrails: [{metric: loss, max_drop: 0.05, higher_is_better: false}]
//
// At least one trigger besides manual (`gantry schedule trigger`) is not
// required: a schedule with none runs only when triggered by hand.
// Errors name the field path ("schedule: triggers.cron: cron field 2 ...").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/job_spec.h"
#include "coordinator/retrain/cron.h"
#include "coordinator/retrain/gate.h"
#include "coordinator/retrain/triggers.h"

namespace gantry::coordinator {

struct NewDataTrigger {
  std::string dir;
  NewDataConfig thresholds;
};

struct ScheduleSpec {
  std::string name;
  std::string model;
  std::string champion = "production";
  JobSpec job;
  std::optional<CronSchedule> cron;
  std::optional<NewDataTrigger> new_data;
  bool on_drift = false;
  std::vector<std::string> on_alerts;
  double replay = 0;
  GateConfig gate;

  // `base_dir` resolves a `job:` file name and the job's relative paths.
  static Result<ScheduleSpec> Parse(const json& j, const std::string& base_dir = "");
  json ToJson() const;
};

}  // namespace gantry::coordinator
