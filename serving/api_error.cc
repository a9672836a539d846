#include "serving/api_error.h"

namespace gantry::serving {

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kMalformed: return "malformed";
    case ErrorKind::kWrongDatatype: return "wrong_datatype";
    case ErrorKind::kWrongShape: return "wrong_shape";
    case ErrorKind::kNonFinite: return "non_finite";
    case ErrorKind::kTooLarge: return "too_large";
    case ErrorKind::kUnknownModel: return "unknown_model";
    case ErrorKind::kOverloaded: return "overloaded";
    case ErrorKind::kUnavailable: return "unavailable";
    case ErrorKind::kInternal: return "internal";
  }
  return "internal";
}

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kResourceExhausted: return 503;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

ApiError ApiErrorFromStatus(const Status& status) {
  ErrorKind kind = ErrorKind::kInternal;
  switch (status.code()) {
    case StatusCode::kInvalidArgument: kind = ErrorKind::kMalformed; break;
    case StatusCode::kNotFound: kind = ErrorKind::kUnknownModel; break;
    case StatusCode::kResourceExhausted: kind = ErrorKind::kOverloaded; break;
    case StatusCode::kUnavailable: kind = ErrorKind::kUnavailable; break;
    default: break;
  }
  return {HttpStatusFor(status.code()), kind, status.message()};
}

}  // namespace gantry::serving
