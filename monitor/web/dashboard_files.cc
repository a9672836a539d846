#include "monitor/web/dashboard_files.h"

#include <string>

#include "monitor/web/dashboard_assets.h"

namespace gantry::monitor {

Status AddDashboardFiles(http::StaticFiles& files) {
  GANTRY_RETURN_IF_ERROR(
      files.AddEmbedded("/", std::string(web_assets::IndexHtml()), "text/html; charset=utf-8"));
  GANTRY_RETURN_IF_ERROR(files.AddEmbedded("/static/dashboard.js", std::string(web_assets::DashboardJs())));
  GANTRY_RETURN_IF_ERROR(files.AddEmbedded("/static/dashboard.css", std::string(web_assets::DashboardCss())));
  const std::string dir = http::kDygraphsDir;
  GANTRY_RETURN_IF_ERROR(files.AddFile("/static/dygraph.min.js", dir + "/dygraph.min.js"));
  GANTRY_RETURN_IF_ERROR(files.AddFile("/static/dygraph.css", dir + "/dygraph.css"));
  return Status::Ok();
}

}  // namespace gantry::monitor
