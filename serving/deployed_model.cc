#include "serving/deployed_model.h"

#include <algorithm>
#include <future>

#include "common/http/server.h"
#include "common/protocol.h"

namespace gantry::serving {
namespace {

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

http::HttpResponse WithVersion(http::HttpResponse r, const std::string& version) {
  r.headers.emplace_back("X-Model-Version", version);
  return r;
}

}  // namespace

DeployedModel::DeployedModel(DeploymentOptions options, ServingMetricsOptions metrics)
    : options_(std::move(options)) {
  options_.limits.max_rows = static_cast<int64_t>(options_.max_batch);
  metrics.max_batch = options_.max_batch;
  metrics_ = std::make_unique<ServingMetrics>(std::move(metrics));
  BatcherOptions b;
  b.row_size = options_.row_size;
  b.max_batch = options_.max_batch;
  b.max_delay = options_.max_delay;
  // Batches run on the HTTP loop that read their requests (no hand-off); the
  // infer route is asynchronous, so that loop answers.
  b.run_on_submitting_loop = options_.run_on_http_loop;
  BatchFn inner = SlotBatchFn(slot_);
  ServingMetrics* m = metrics_.get();
  batcher_ = std::make_unique<Batcher>(b, [inner, m](const BatchInput& in) {
    m->RecordBatch(in.rows);
    return inner(in);
  });
}

DeployedModel::~DeployedModel() { batcher_->Stop(StopMode::kFail); }

std::string DeployedModel::Install(std::shared_ptr<const Servable> model, ModelMetadata metadata,
                                   std::shared_ptr<const InputReference> reference) {
  {
    std::lock_guard<std::mutex> l(mu_);
    metadata.name = options_.name;
    metadata_ = std::make_shared<const ModelMetadata>(std::move(metadata));
    reference_ = std::move(reference);
  }
  auto previous = slot_.Swap(std::move(model));
  return previous ? previous->version() : "";
}

bool DeployedModel::ready() const { return slot_.Get() != nullptr && !batcher_->stopping(); }

std::string DeployedModel::version() const {
  auto m = slot_.Get();
  return m ? m->version() : "";
}

ModelMetadata DeployedModel::metadata() const { return *SharedMetadata(); }

std::shared_ptr<const ModelMetadata> DeployedModel::SharedMetadata() const {
  std::lock_guard<std::mutex> l(mu_);
  return metadata_;
}

std::shared_ptr<const InputReference> DeployedModel::reference() const {
  std::lock_guard<std::mutex> l(mu_);
  return reference_;
}

http::HttpResponse DeployedModel::Metadata() const {
  if (!ready()) return http::HttpResponse::Json(503, EncodeError({503, ErrorKind::kUnavailable, "model " + options_.name + " is not loaded"}));
  return WithVersion(http::HttpResponse::Json(200, EncodeModelMetadata(metadata())), version());
}

http::HttpResponse DeployedModel::Ready() const {
  const std::string v = version();
  json body = {{"name", options_.name}, {"ready", ready()}, {"model_version", v}};
  return WithVersion(http::HttpResponse::Json(ready() ? 200 : 503, body.dump()), v);
}

http::HttpResponse DeployedModel::Error(const ApiError& error, std::chrono::steady_clock::time_point start,
                                        const std::string& version) {
  metrics_->RecordError(error, Seconds(start));
  json body = {{"error", error.message}, {"model_name", options_.name}, {"model_version", version}};
  return WithVersion(
      http::HttpResponse::Json(error.http_status, body.dump(-1, ' ', false, json::error_handler_t::replace)),
      version);
}

http::HttpResponse DeployedModel::Infer(const http::HttpRequest& request) {
  std::promise<http::HttpResponse> answered;
  auto answer = answered.get_future();
  InferAsync(request, [&answered](http::HttpResponse r) { answered.set_value(std::move(r)); });
  return answer.get();
}

// What a request carries from its decode to its answer.
struct DeployedModel::InferCall {
  std::chrono::steady_clock::time_point start;
  std::string id;
  bool binary_logits = false;
  bool sampled = false;
  std::vector<float> features;  // the sample for the monitor (sampled only)
  std::function<void(http::HttpResponse)> done;
};

void DeployedModel::InferAsync(const http::HttpRequest& request, std::function<void(http::HttpResponse)> done) {
  auto call = std::make_shared<InferCall>();
  call->start = std::chrono::steady_clock::now();
  call->done = std::move(done);
  const std::string current = version();
  if (!ready()) {
    return call->done(Error({503, ErrorKind::kUnavailable, "model " + options_.name + " is not loaded"},
                            call->start, current));
  }
  auto header_length = ParseInferenceHeaderLength(request.Header("inference-header-content-length"));
  if (!header_length.ok()) return call->done(Error(header_length.error(), call->start, current));
  const std::shared_ptr<const ModelMetadata> shared_md = SharedMetadata();  // no copy per request
  const ModelMetadata& md = *shared_md;
  auto decoded = DecodeInferRequest(request.body, md, options_.limits, header_length.value());
  if (!decoded.ok()) return call->done(Error(decoded.error(), call->start, current));
  InferRequest& req = decoded.value();
  call->id = req.id.empty() ? options_.name + "-" + std::to_string(next_id_.fetch_add(1)) : req.id;
  call->binary_logits = BinaryOutputs(req, md).count("logits") > 0;
  std::vector<float> rows = std::move(req.inputs[0]).ToFloat();
  const size_t row_size = batcher_->options().row_size;
  metrics_->CheckRange(rows, row_size);
  // Input quality against the served version's profile, and the sample for
  // the monitor, both in the profile's feature space (one copy, only when
  // needed: a profile to check against or a sampled request).
  const std::shared_ptr<const InputReference> ref = reference();
  call->sampled = reporter_ != nullptr && reporter_->ShouldSample();
  if (call->sampled || (ref && !ref->range.min.empty())) {
    std::vector<float> features = ref ? ref->Transform(rows) : rows;
    if (ref) metrics_->CheckRange(features, row_size, ref->range);
    if (call->sampled) call->features = std::move(features);
  }
  // The batcher answers on this HTTP loop's thread (a deferred flush) or on
  // its worker; either way Finish builds the response there.
  Status submitted = batcher_->Submit(
      std::move(rows), [this, call](Result<RowsResult> r) { call->done(Finish(*call, std::move(r))); },
      &http::DeferOnCurrentLoop);
  if (!submitted.ok()) call->done(Error(ApiErrorFromStatus(submitted), call->start, current));
}

http::HttpResponse DeployedModel::Finish(InferCall& call, Result<RowsResult> result) {
  const std::string current = version();
  if (std::chrono::steady_clock::now() - call.start > options_.request_timeout) {
    // As before the asynchronous path: the request is answered once its
    // batch ran, 504 when that took longer than request_timeout.
    return Error(ApiErrorFromStatus(Status::DeadlineExceeded(
                     "the request waited over " + std::to_string(options_.request_timeout.count()) +
                     " ms for its batch")),
                 call.start, current);
  }
  if (!result.ok()) return Error(ApiErrorFromStatus(result.status()), call.start, current);
  RowsResult& out = result.value();
  const size_t row_size = batcher_->options().row_size;

  InferResponse resp;
  resp.model_name = options_.name;
  resp.model_version = out.model_version;
  resp.id = call.id;
  Tensor logits;
  logits.name = "logits";
  logits.shape = {static_cast<int64_t>(out.rows), static_cast<int64_t>(out.row_size)};
  logits.datatype = DataType::kFp32;
  // Predictions are remembered for feedback: the request id for one row,
  // "<id>/<row>" for each row of a larger request.
  std::vector<int64_t> predicted;
  for (size_t r = 0; r < out.rows && out.row_size > 0; ++r) {
    const float* row = out.data.data() + r * out.row_size;
    const int64_t cls = std::max_element(row, row + out.row_size) - row;
    metrics_->feedback().RecordPrediction(out.rows == 1 ? call.id : call.id + "/" + std::to_string(r), cls);
    if (call.sampled) predicted.push_back(cls);
  }
  if (call.sampled && predicted.size() * row_size == call.features.size()) {
    reporter_->AddSample(options_.name, out.model_version, call.features, row_size, predicted);
  }
  logits.data = std::move(out.data);
  resp.outputs.push_back(std::move(logits));
  metrics_->RecordSuccess(Seconds(call.start));
  if (!call.binary_logits) {
    return WithVersion(http::HttpResponse::Json(200, EncodeInferResponse(resp)), resp.model_version);
  }
  EncodedBody encoded = EncodeInferResponse(resp, {"logits"});
  http::HttpResponse r;
  r.status = 200;
  r.content_type = "application/octet-stream";
  r.body = std::move(encoded.body);
  r.headers.emplace_back(kInferenceHeaderContentLength, std::to_string(encoded.json_length));
  return WithVersion(std::move(r), resp.model_version);
}

http::HttpResponse DeployedModel::Feedback(const http::HttpRequest& request) {
  const auto start = std::chrono::steady_clock::now();
  const std::string current = version();
  auto decoded = DecodeFeedbackRequest(request.body, options_.limits);
  if (!decoded.ok()) return Error(decoded.error(), start, current);
  Status s = metrics_->feedback().RecordFeedback(decoded->id, decoded->label);
  if (!s.ok()) {
    ApiError e = ApiErrorFromStatus(s);
    if (s.code() == StatusCode::kAlreadyExists) e.http_status = 409;
    return Error(e, start, current);
  }
  FeedbackSnapshot f = metrics_->feedback().Snapshot();
  json body = {{"model_name", options_.name}, {"model_version", current}, {"id", decoded->id},
               {"window_outcomes", f.window_outcomes}};
  if (f.accuracy) body["accuracy"] = *f.accuracy;
  return WithVersion(http::HttpResponse::Json(200, body.dump()), current);
}

void DeployedModel::Drain() { batcher_->Stop(StopMode::kDrain); }

}  // namespace gantry::serving
