// The monitor's request/reply API: the only place where its query results
// become wire bodies (docs/protocol.md, "Monitor / API").
//
//   get_metrics {job_id, after_step? = -1, limit? = 100000}
//               -> {job_id, points: [{rank, attempt, step, epoch, time,
//                                     total_steps?, values: {name: number}}]}
//                  (total_steps left out when the worker did not report it)
//   get_events  {job_id} -> {job_id, events: [{state, attempt?, reason?, time}]}
//   stats       {} -> {points_ingested, events_ingested, messages_dropped,
//                     points_repeated, buffered}
//   get_alerts  {job_id?} -> {alerts: [alert_json.h instance + job_id, rank (null
//               when per job)]}: pending, firing and resolved alerts, firing
//               first (AlertEngine::List), only `job_id`'s when given
//
// Fields of the wrong type are invalid_argument replies naming the field;
// a job the monitor does not know is not_found (MonitorService).
//
// Thread safety: the handlers run on the RpcServer's thread, like the
// MonitorService they call; `service` must outlive `server`'s Serve().
#pragma once

#include "common/rpc.h"
#include "monitor/alerts/engine.h"
#include "monitor/monitor_service.h"

namespace gantry::monitor {

void RegisterApiHandlers(RpcServer& server, MonitorService& service);
// get_alerts; `engine` must outlive `server`'s Serve().
void RegisterAlertHandlers(RpcServer& server, const alerts::AlertEngine& engine);
// One alert as the API, the feed and the HTTP API encode it.
json AlertApiJson(const alerts::AlertInstance& a);

}  // namespace gantry::monitor
