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
//
// Binary tensor extension (KServe v2 / Triton "binary data"): with an
// `Inference-Header-Content-Length: H` header, the body's first H bytes are
// the JSON above and the rest is raw tensor data:
//   7. An input with `"parameters": {"binary_data_size": N}` has no `data`;
//      its N bytes come next after the previous binary input's, in the order
//      of `inputs`, little-endian, row-major. N must equal the element count
//      × the datatype's size (BOOL/UINT8 1, INT32/FP32 4, INT64/FP64 8;
//      BYTES is not accepted in binary). NaN/Inf are refused as in rule 4.
//      JSON and binary inputs may be mixed in one request.
//   8. H larger than the body, a binary_data_size without the header, and
//      binary bytes left over or missing are 400s naming the field.
//   9. The response carries an output in binary when the request asks for it
//      (`outputs[i].parameters.binary_data: true`, or the request parameter
//      `binary_data_output: true` for outputs not listed with their own
//      setting): the output then has `parameters.binary_data_size` and no
//      `data`, its bytes follow the JSON, and the response's
//      Inference-Header-Content-Length gives the JSON's length.
// Decoding never throws and never crashes on hostile input.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "serving/api_error.h"
#include "serving/tensor.h"

namespace gantry::serving {

inline constexpr size_t kMaxIdLength = 256;
// The binary tensor extension's header (rule 7).
inline constexpr const char* kInferenceHeaderContentLength = "Inference-Header-Content-Length";
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

// `header_length`: the Inference-Header-Content-Length value, if the request
// had one (the binary extension); nullopt: the whole body is JSON.
ApiResult<InferRequest> DecodeInferRequest(std::string_view body, const ModelMetadata& model,
                                           const CodecLimits& limits = {},
                                           std::optional<uint64_t> header_length = std::nullopt);
// The Inference-Header-Content-Length header value: "" (absent) gives
// nullopt; anything but a decimal integer is a 400.
ApiResult<std::optional<uint64_t>> ParseInferenceHeaderLength(std::string_view value);
// The outputs the request asks for in binary (rule 9), among `model`'s.
std::set<std::string> BinaryOutputs(const InferRequest& request, const ModelMetadata& model);
ApiResult<FeedbackRequest> DecodeFeedbackRequest(std::string_view body,
                                                 const CodecLimits& limits = {});

// A body of the binary extension: the JSON, then the binary tensors.
struct EncodedBody {
  std::string body;
  size_t json_length = 0;  // the Inference-Header-Content-Length to send
};

std::string EncodeInferResponse(const InferResponse& response);
// Outputs named in `binary` go as raw bytes after the JSON (rule 9); BYTES
// outputs always go as JSON.
EncodedBody EncodeInferResponse(const InferResponse& response, const std::set<std::string>& binary);
// Client side (tests, load generator): the inverse of EncodeInferResponse;
// `header_length` as for DecodeInferRequest.
ApiResult<InferResponse> DecodeInferResponse(std::string_view body,
                                             std::optional<uint64_t> header_length = std::nullopt);
// Client side: a request body; inputs named in `binary` go as raw bytes
// (rule 7). Request and output parameters are sent as given.
EncodedBody EncodeInferRequest(const InferRequest& request, const std::set<std::string>& binary = {});
std::string EncodeModelMetadata(const ModelMetadata& metadata);
// {"error": message}.
std::string EncodeError(const ApiError& error);

}  // namespace gantry::serving
