// The coordinator's schedule API: binds schedule_add, schedule_list,
// schedule_show, schedule_pause, schedule_resume, schedule_rm,
// schedule_trigger, schedule_history and schedule_alert (docs/protocol.md,
// "Schedules") to a Schedules on the RpcServer's thread.
#pragma once

#include "common/rpc.h"
#include "coordinator/retrain/schedules.h"

namespace gantry::coordinator {

// Wire forms (also what `gantry schedule ... --json` prints).
json ScheduleJson(const ScheduleRecord& r);
json RunJson(const RunRecord& r);

// Registers the handlers; the caller runs Schedules::Tick() on the server's
// tick (main.cc).
void RegisterScheduleHandlers(RpcServer& server, Schedules& schedules);

}  // namespace gantry::coordinator
