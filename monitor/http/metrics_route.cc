#include "monitor/http/metrics_route.h"

#include <utility>

namespace gantry::http {

Handler MetricsRoute(std::function<Result<prometheus::MetricsSnapshot>()> snapshot) {
  return [snapshot = std::move(snapshot)](const HttpRequest&) {
    auto snap = snapshot();
    if (!snap.ok()) return HttpResponse::Error(500, "metrics snapshot: " + snap.status().message());
    auto page = prometheus::RenderPrometheus(*snap);
    if (!page.ok()) return HttpResponse::Error(500, "metrics page: " + page.status().message());
    HttpResponse r = HttpResponse::Text(200, std::move(page).value());
    r.content_type = std::string(prometheus::TextWriter::kContentType);
    return r;
  };
}

}  // namespace gantry::http
