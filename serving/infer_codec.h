// JSON codec of the Open Inference Protocol (KServe v2) REST API: decodes and
// validates infer and feedback requests against a model's declared tensors,
// encodes responses, metadata and error bodies. JSON is made here and in the
// HTTP handlers only; everything else takes the typed structs.
//
// Decoding rules (each failure names the field, e.g.
// `inputs[0].shape: expected [-1,1,28,28] or [-1,784], got [3,5]`):
//   1. The body is at most limits.max_body_bytes (else 413) and a JSON object.
//   2. `id` (optional) is a string of at most kMaxIdLength characters;
//      `parameters` (optional) an object of bool/number/string values.
//   3. `inputs` is a non-empty array naming each model input exactly once;
//      each has `name`, `datatype` (a v2 name; decodable, and numeric for a
//      numeric model input), `shape` (non-negative integers matching one of
//      the model's shapes, -1 = any batch size) and `data`.
//   4. `data` is flat or nested row-major (each nesting level as long as its
//      dimension); its element count equals the product of `shape`. Elements
//      have the datatype's JSON type and range; NaN and ±Inf (including the
//      strings "NaN"/"Inf" and FP32 overflow) are refused with the flat
//      element index (kind non_finite).
//   5. Elements over limits.max_elements, or rows (shape[0]) over
//      limits.max_rows (the deployment's max_batch; 0 = no limit), are 413.
//   6. `outputs` (optional) names model outputs.
// Decoding never throws and never crashes on hostile input.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "serving/api_error.h"
#include "serving/tensor.h"

namespace gantry::serving {

inline constexpr size_t kMaxIdLength = 256;
inline constexpr size_t kMaxDims = 8;

struct CodecLimits {
  // Larger bodies are refused before parsing (413). 64 MiB holds a batch of
  // ~1000 Fashion-MNIST images as JSON numbers; lower it for small models.
  size_t max_body_bytes = 64u << 20;
  // Elements per input tensor (413).
  uint64_t max_elements = 16u << 20;
  // Rows (shape[0]) per request; 0 = no limit. Set to the batcher's max_batch.
  int64_t max_rows = 0;
};

struct RequestedOutput {
  std::string name;
  Parameters parameters;
};

struct InferRequest {
  std::string id;  // empty when the client sent none
  std::vector<Tensor> inputs;  // in the model's declared input order
  std::vector<RequestedOutput> outputs;  // empty = all outputs
  Parameters parameters;
};

struct InferResponse {
  std::string model_name;
  std::string model_version;
  std::string id;
  std::vector<Tensor> outputs;
  Parameters parameters;
};

// POST /v2/models/{m}/feedback: {"id": "<request id>", "label": <class>}.
struct FeedbackRequest {
  std::string id;
  int64_t label = 0;
};

ApiResult<InferRequest> DecodeInferRequest(std::string_view body, const ModelMetadata& model,
                                           const CodecLimits& limits = {});
ApiResult<FeedbackRequest> DecodeFeedbackRequest(std::string_view body,
                                                 const CodecLimits& limits = {});

std::string EncodeInferResponse(const InferResponse& response);
// Client side (tests, load generator): the inverse of EncodeInferResponse.
ApiResult<InferResponse> DecodeInferResponse(std::string_view body);
std::string EncodeModelMetadata(const ModelMetadata& metadata);
// {"error": message}.
std::string EncodeError(const ApiError& error);

}  // namespace gantry::serving
