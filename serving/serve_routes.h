// The HTTP routes of gantry-serve (Open Inference Protocol, KServe v2 REST):
//   GET  /v2/health/live            200 while the process runs
//   GET  /v2/health/ready           200 when every model is loaded, else 503
//   GET  /v2                        server metadata
//   GET  /v2/models/{m}             model metadata (404 unknown model)
//   GET  /v2/models/{m}/ready       200 / 503
//   POST /v2/models/{m}/infer       inference: JSON tensors, or the binary
//                                   tensor extension (infer_codec.h); answered
//                                   asynchronously (Router::AddAsync) by the
//                                   batcher's callback
//   POST /v2/models/{m}/feedback    {"id", "label"}: a true label, live accuracy
//   GET  /metrics                   Prometheus text: requests, errors by code
//                                   and kind, latency and batch-size
//                                   histograms, input quality, feedback
// infer and feedback need no token (public routes).
//
// Ownership: the models must outlive the router. Thread safety: the
// handlers may run on many threads at once.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/http/router.h"
#include "serving/deployed_model.h"

namespace gantry::serving {

Result<std::shared_ptr<const http::Router>> MakeServeRouter(const std::vector<DeployedModel*>& models);
// The Prometheus text of every model's metrics.
std::string RenderServingMetrics(const std::vector<DeployedModel*>& models);

}  // namespace gantry::serving
