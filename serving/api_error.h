// Errors the serving API answers with: an HTTP status, a kind (for the input
// quality counters) and a message that names the field at fault
// ("inputs[0].shape: expected [-1,784], got [3,5]"). The body is
// {"error": message} (Open Inference Protocol).
//
// Mapping from Status codes (one place, used by the HTTP layer):
//   invalid_argument → 400, not_found → 404, resource_exhausted → 503
//   (queue full), unavailable → 503 (stopping, no model), deadline_exceeded →
//   504, anything else → 500. A body or tensor over the size limits is 413; the
//   codec builds that ApiError directly (there is no Status code for it).
//
// Thread safety: plain data and pure functions.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "common/status.h"

namespace gantry::serving {

enum class ErrorKind {
  kMalformed,     // not JSON, wrong JSON types, missing fields
  kWrongDatatype, // unknown datatype, or not the model's
  kWrongShape,    // shape/data length mismatch, or not the model's shape
  kNonFinite,     // NaN or Inf in the data
  kTooLarge,      // body, elements or rows over the limits (413)
  kUnknownModel,  // 404
  kOverloaded,    // queue full (503)
  kUnavailable,   // stopping or no model loaded (503)
  kInternal,      // the model failed (500)
};

std::string_view ErrorKindName(ErrorKind kind);

struct ApiError {
  int http_status = 500;
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;

  static ApiError BadRequest(ErrorKind kind, std::string message) {
    return {400, kind, std::move(message)};
  }
  static ApiError TooLarge(std::string message) {
    return {413, ErrorKind::kTooLarge, std::move(message)};
  }
};

int HttpStatusFor(StatusCode code);
ApiError ApiErrorFromStatus(const Status& status);

// Either a T or an ApiError; the codec's return type (like Result<T>, but the
// error keeps its HTTP status and kind).
template <typename T>
class [[nodiscard]] ApiResult {
 public:
  ApiResult(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  ApiResult(ApiError error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return std::holds_alternative<T>(v_); }
  const ApiError& error() const { return std::get<ApiError>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, ApiError> v_;
};

}  // namespace gantry::serving
