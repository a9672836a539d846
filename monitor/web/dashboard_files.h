// The live dashboard page served by the monitor's HTTP server.
//
// AddDashboardFiles() registers, on `files`:
//   "/"                      index.html            (embedded at build time)
//   "/static/dashboard.js"   the page's script     (embedded)
//   "/static/dashboard.css"  the page's style      (embedded)
//   "/static/dygraph.min.js" Debian's libjs-dygraphs, read from http::kDygraphsDir
//   "/static/dygraph.css"    its style sheet       (same folder)
// The dygraphs files are read when requested: without libjs-dygraphs they
// answer 404 and the page shows the tables but no charts. Fails only when one
// of these paths is already registered on `files`.
//
// The page needs the REST + SSE API of /work/wt/MONITOR_API.md (docs/monitor.md,
// "Dashboard"): GET /api/jobs, /api/jobs/{id}/metrics, /api/alerts, /api/drift
// and the event stream GET /events.
//
// Thread safety: call before StaticFiles::Install(), like any Add*().
#pragma once

#include "common/status.h"
#include "common/http/static_files.h"

namespace gantry::monitor {

Status AddDashboardFiles(http::StaticFiles& files);

}  // namespace gantry::monitor
