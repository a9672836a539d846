#include "serving/serve_routes.h"

#include <cstdio>
#include <map>
#include <sstream>

#include "common/protocol.h"

namespace gantry::serving {
namespace {

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

void RenderHistogram(std::ostringstream& o, const std::string& metric, const std::string& labels,
               const HistogramSnapshot& h) {
  uint64_t cum = 0;
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    cum += h.counts[i];
    o << metric << "_bucket{" << labels << ",le=\"" << Num(h.bounds[i]) << "\"} " << cum << "\n";
  }
  o << metric << "_bucket{" << labels << ",le=\"+Inf\"} " << h.count << "\n";
  o << metric << "_sum{" << labels << "} " << Num(h.sum) << "\n";
  o << metric << "_count{" << labels << "} " << h.count << "\n";
}

}  // namespace

std::string RenderServingMetrics(const std::vector<DeployedModel*>& models) {
  std::ostringstream o;
  o << "# TYPE gantry_serve_requests_total counter\n# TYPE gantry_serve_errors_total counter\n"
       "# TYPE gantry_serve_latency_seconds histogram\n# TYPE gantry_serve_batch_size histogram\n";
  for (DeployedModel* m : models) {
    const ServingSnapshot s = m->Snapshot();
    const std::string l = "model=\"" + m->options().name + "\"";
    o << "gantry_serve_model_info{" << l << ",version=\"" << m->version() << "\"} 1\n";
    o << "gantry_serve_reloads_total{" << l << "} " << (m->swaps() > 0 ? m->swaps() - 1 : 0) << "\n";
    o << "gantry_serve_requests_total{" << l << "} " << s.requests << "\n";
    o << "gantry_serve_requests_succeeded_total{" << l << "} " << s.succeeded << "\n";
    for (const auto& [code, n] : s.errors_by_status) {
      o << "gantry_serve_errors_total{" << l << ",code=\"" << code << "\"} " << n << "\n";
    }
    for (const auto& [kind, n] : s.errors_by_kind) {
      o << "gantry_serve_errors_by_kind_total{" << l << ",kind=\"" << kind << "\"} " << n << "\n";
    }
    RenderHistogram(o, "gantry_serve_latency_seconds", l, s.latency_seconds);
    RenderHistogram(o, "gantry_serve_batch_size", l, s.batch_size);
    const InputQualitySnapshot& q = s.input_quality;
    o << "gantry_serve_input_non_finite_total{" << l << "} " << q.non_finite << "\n";
    o << "gantry_serve_input_wrong_shape_total{" << l << "} " << q.wrong_shape << "\n";
    o << "gantry_serve_input_wrong_datatype_total{" << l << "} " << q.wrong_datatype << "\n";
    o << "gantry_serve_input_out_of_range_values_total{" << l << "} " << q.out_of_range_values << "\n";
    o << "gantry_serve_input_out_of_range_requests_total{" << l << "} " << q.out_of_range_requests << "\n";
    const FeedbackSnapshot& f = s.feedback;
    o << "gantry_serve_feedback_labels_total{" << l << "} " << f.labels_matched << "\n";
    o << "gantry_serve_feedback_window_outcomes{" << l << "} " << f.window_outcomes << "\n";
    if (f.accuracy) o << "gantry_serve_live_accuracy{" << l << "} " << Num(*f.accuracy) << "\n";
    for (const auto& [cls, c] : f.per_class) {
      const std::string cl = l + ",class=\"" + std::to_string(cls) + "\"";
      if (c.precision) o << "gantry_serve_live_precision{" << cl << "} " << Num(*c.precision) << "\n";
      if (c.recall) o << "gantry_serve_live_recall{" << cl << "} " << Num(*c.recall) << "\n";
    }
  }
  return o.str();
}

Result<std::shared_ptr<const http::Router>> MakeServeRouter(const std::vector<DeployedModel*>& models) {
  auto router = std::make_shared<http::Router>();
  auto by_name = std::make_shared<std::map<std::string, DeployedModel*>>();
  for (DeployedModel* m : models) (*by_name)[m->options().name] = m;
  auto find = [by_name](const http::HttpRequest& req) -> DeployedModel* {
    auto it = by_name->find(req.params.at("m"));
    return it == by_name->end() ? nullptr : it->second;
  };
  auto unknown = [by_name](const http::HttpRequest& req) {
    std::string known;
    for (const auto& [n, m] : *by_name) known += (known.empty() ? "" : ", ") + n;
    json body = {{"error", "model \"" + req.params.at("m") + "\" is not served here (models: " + known + ")"}};
    return http::HttpResponse::Json(404, body.dump(-1, ' ', false, json::error_handler_t::replace));
  };
  http::RouteOptions open;
  open.public_route = true;
  GANTRY_RETURN_IF_ERROR(router->Add("GET", "/v2/health/live", [](const http::HttpRequest&) {
    return http::HttpResponse::Json(200, R"({"live":true})");
  }));
  GANTRY_RETURN_IF_ERROR(router->Add("GET", "/v2/health/ready", [models](const http::HttpRequest&) {
    bool ready = true;
    json versions = json::object();
    for (DeployedModel* m : models) {
      ready = ready && m->ready();
      versions[m->options().name] = m->version();
    }
    return http::HttpResponse::Json(ready ? 200 : 503, json{{"ready", ready}, {"models", versions}}.dump());
  }));
  GANTRY_RETURN_IF_ERROR(router->Add("GET", "/v2", [](const http::HttpRequest&) {
    return http::HttpResponse::Json(200, R"({"name":"gantry-serve","version":"1","extensions":["feedback","statistics"]})");
  }));
  GANTRY_RETURN_IF_ERROR(router->Add("GET", "/v2/models/{m}", [find, unknown](const http::HttpRequest& r) {
    DeployedModel* m = find(r);
    return m ? m->Metadata() : unknown(r);
  }));
  GANTRY_RETURN_IF_ERROR(router->Add("GET", "/v2/models/{m}/ready", [find, unknown](const http::HttpRequest& r) {
    DeployedModel* m = find(r);
    return m ? m->Ready() : unknown(r);
  }));
  // Asynchronous: the batcher's callback answers, so no HTTP thread waits
  // while the request waits for its batch.
  GANTRY_RETURN_IF_ERROR(router->AddAsync("POST", "/v2/models/{m}/infer",
                                          [find, unknown](const http::HttpRequest& r, http::HttpResponder out) {
    DeployedModel* m = find(r);
    if (m == nullptr) return out.Send(unknown(r));
    m->InferAsync(r, [out](http::HttpResponse res) { out.Send(std::move(res)); });
  }, open));
  GANTRY_RETURN_IF_ERROR(router->Add("POST", "/v2/models/{m}/feedback", [find, unknown](const http::HttpRequest& r) {
    DeployedModel* m = find(r);
    return m ? m->Feedback(r) : unknown(r);
  }, open));
  // The statistics extension's shape (Triton's model_stats): `gantry
  // deployments` reads its REQ/S column from request_count.
  GANTRY_RETURN_IF_ERROR(router->Add("GET", "/v2/models/{m}/stats", [find, unknown](const http::HttpRequest& r) {
    DeployedModel* m = find(r);
    if (m == nullptr) return unknown(r);
    const ServingSnapshot s = m->Snapshot();
    uint64_t failed = 0;
    for (const auto& [code, n] : s.errors_by_status) failed += n;
    json stats = {{"name", m->options().name},
                  {"version", m->version()},
                  {"request_count", s.requests},
                  {"success_count", s.succeeded},
                  {"fail_count", failed},
                  {"inference_count", static_cast<uint64_t>(s.batch_size.sum)},  // rows run
                  {"execution_count", s.batch_size.count}};                     // batches run
    return http::HttpResponse::Json(
        200, json{{"model_stats", json::array({stats})}}.dump(-1, ' ', false, json::error_handler_t::replace));
  }));
  GANTRY_RETURN_IF_ERROR(router->Add("GET", "/metrics", [models](const http::HttpRequest&) {
    http::HttpResponse r = http::HttpResponse::Text(200, RenderServingMetrics(models));
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  }));
  return std::shared_ptr<const http::Router>(std::move(router));
}

}  // namespace gantry::serving
