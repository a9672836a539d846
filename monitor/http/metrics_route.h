// The `GET /metrics` handler: asks `snapshot` for the current
// MetricsSnapshot on every scrape and answers the Prometheus text page
// (200, `text/plain; version=0.0.4; charset=utf-8`), or 500 with the reason
// when the snapshot or the rendering fails.
//
// Wiring: router.Add("GET", "/metrics", MetricsRoute([&] { return service.Snapshot(); }));
// Thread safety: `snapshot` is called on the server's threads.
#pragma once

#include <functional>

#include "common/status.h"
#include "common/http/router.h"
#include "monitor/prometheus/snapshot.h"

namespace gantry::http {

Handler MetricsRoute(std::function<Result<prometheus::MetricsSnapshot>()> snapshot);

}  // namespace gantry::http
