// The KServe v2 codec: valid requests in every decodable form, and invalid
// ones refused with the field named, the right HTTP status and kind.
#include "serving/infer_codec.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace gantry::serving {
namespace {

ModelMetadata Tiny() {  // rows of 2x2 "images", either layout
  return {"tiny", {"3"}, "gantry_builtin",
          {{"input", DataType::kFp32, {{-1, 1, 2, 2}, {-1, 4}}}},
          {{"logits", DataType::kFp32, {{-1, 3}}}}};
}

ModelMetadata Fashion() {
  return {"fashion", {"1"}, "gantry_builtin",
          {{"input", DataType::kFp32, {{-1, 1, 28, 28}, {-1, 784}}}},
          {{"logits", DataType::kFp32, {{-1, 10}}}}};
}

std::string Body(const std::string& datatype, const std::string& shape, const std::string& data,
                 const std::string& extra = "") {
  return R"({"id": "r1", "inputs": [{"name": "input", "datatype": ")" + datatype +
         R"(", "shape": )" + shape + R"(, "data": )" + data + "}]" + extra + "}";
}

// Expects a refusal with this HTTP status, kind and message prefix.
void ExpectError(const std::string& body, int status, ErrorKind kind, const std::string& prefix,
                 const ModelMetadata& model = Tiny(), const CodecLimits& limits = {}) {
  auto r = DecodeInferRequest(body, model, limits);
  ASSERT_FALSE(r.ok()) << body;
  EXPECT_EQ(r.error().http_status, status) << r.error().message;
  EXPECT_EQ(ErrorKindName(r.error().kind), ErrorKindName(kind)) << r.error().message;
  EXPECT_EQ(r.error().message.rfind(prefix, 0), 0u)
      << "message: " << r.error().message << "\nwanted prefix: " << prefix;
}

TEST(InferCodec, DecodesFlatFp32) {
  auto r = DecodeInferRequest(Body("FP32", "[2, 4]", "[1, 2, 3, 4, 5, 6, 7, 8.5]"), Tiny());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->id, "r1");
  ASSERT_EQ(r->inputs.size(), 1u);
  EXPECT_EQ(r->inputs[0].shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(r->inputs[0].ToFloat(), (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8.5f}));
}

TEST(InferCodec, DecodesNestedRowMajor) {
  auto r = DecodeInferRequest(
      Body("FP32", "[2, 1, 2, 2]", "[[[[1, 2], [3, 4]]], [[[5, 6], [7, 8]]]]"), Tiny());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->inputs[0].ToFloat(), (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(InferCodec, DecodesOtherNumericDatatypes) {
  for (const char* dt : {"FP64", "INT32", "INT64", "UINT8"}) {
    auto r = DecodeInferRequest(Body(dt, "[1, 4]", "[0, 1, 2, 255]"), Tiny());
    ASSERT_TRUE(r.ok()) << dt << ": " << r.error().message;
    EXPECT_EQ(DataTypeName(r->inputs[0].datatype), dt);
    EXPECT_EQ(r->inputs[0].ToFloat(), (std::vector<float>{0, 1, 2, 255})) << dt;
  }
  auto b = DecodeInferRequest(Body("BOOL", "[1, 4]", "[true, false, true, true]"), Tiny());
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->inputs[0].ToFloat(), (std::vector<float>{1, 0, 1, 1}));
}

TEST(InferCodec, DecodesParametersAndOutputs) {
  auto r = DecodeInferRequest(
      Body("FP32", "[1, 4]", "[1, 2, 3, 4]",
           R"(, "parameters": {"a": 1, "b": "x", "c": true, "d": 0.5},
               "outputs": [{"name": "logits"}])"),
      Tiny());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(std::get<int64_t>(r->parameters.at("a")), 1);
  EXPECT_EQ(std::get<std::string>(r->parameters.at("b")), "x");
  EXPECT_TRUE(std::get<bool>(r->parameters.at("c")));
  EXPECT_DOUBLE_EQ(std::get<double>(r->parameters.at("d")), 0.5);
  ASSERT_EQ(r->outputs.size(), 1u);
  EXPECT_EQ(r->outputs[0].name, "logits");
}

TEST(InferCodec, ShapeNotTheModelsNamesBothLayouts) {
  ExpectError(Body("FP32", "[3, 5]", "[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]"), 400,
              ErrorKind::kWrongShape,
              "inputs[0].shape: expected [-1,1,28,28] or [-1,784], got [3,5]", Fashion());
}

TEST(InferCodec, RefusesMalformedBodies) {
  ExpectError("{not json", 400, ErrorKind::kMalformed, "request body: invalid JSON");
  ExpectError("[1, 2]", 400, ErrorKind::kMalformed, "request body: expected a JSON object");
  ExpectError(R"({"id": "x"})", 400, ErrorKind::kMalformed, "inputs: missing");
  ExpectError(R"({"inputs": []})", 400, ErrorKind::kMalformed, "inputs: expected a non-empty");
  ExpectError(R"({"inputs": [7]})", 400, ErrorKind::kMalformed, "inputs[0]: expected an object");
  ExpectError(R"({"id": 5, "inputs": []})", 400, ErrorKind::kMalformed, "id: expected a string");
  ExpectError(R"({"inputs": [{"datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]})",
              400, ErrorKind::kMalformed, "inputs[0].name: missing");
  ExpectError(R"({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4]}]})", 400,
              ErrorKind::kMalformed, "inputs[0].data: missing");
  ExpectError(Body("FP32", "[1, 4]", "[1, 2, 3, 4]", R"(, "parameters": {"a": [1]})"), 400,
              ErrorKind::kMalformed, "parameters.a: expected a bool, number or string");
  ExpectError(Body("FP32", "[1, 4]", "[1, 2, 3, 4]", R"(, "outputs": [{"name": "probs"}])"), 400,
              ErrorKind::kMalformed, "outputs[0].name: unknown output \"probs\"");
}

TEST(InferCodec, RefusesUnknownAndDuplicateInputs) {
  ExpectError(
      R"({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]})",
      400, ErrorKind::kMalformed,
      "inputs[0].name: unknown input \"x\" (model tiny takes \"input\")");
  const std::string in =
      R"({"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]})";
  ExpectError(R"({"inputs": [)" + in + "," + in + "]}", 400, ErrorKind::kMalformed,
              "inputs[1].name: input \"input\" given twice");
}

TEST(InferCodec, RefusesDatatypes) {
  ExpectError(Body("FLOAT", "[1, 4]", "[1, 2, 3, 4]"), 400, ErrorKind::kWrongDatatype,
              "inputs[0].datatype: unknown datatype \"FLOAT\"");
  ExpectError(Body("FP16", "[1, 4]", "[1, 2, 3, 4]"), 400, ErrorKind::kWrongDatatype,
              "inputs[0].datatype: FP16 is not supported");
  ExpectError(Body("BYTES", "[1, 4]", R"(["a", "b", "c", "d"])"), 400, ErrorKind::kWrongDatatype,
              "inputs[0].datatype: expected FP32 (or another numeric datatype), got BYTES");
  ExpectError(Body("FP32", "[1, 4]", R"([1, "two", 3, 4])"), 400, ErrorKind::kWrongDatatype,
              "inputs[0].data[1]: expected a number for FP32, got string");
  ExpectError(Body("INT32", "[1, 4]", "[1, 2.5, 3, 4]"), 400, ErrorKind::kWrongDatatype,
              "inputs[0].data[1]: expected an integer for INT32, got a fractional number");
  ExpectError(Body("INT32", "[1, 4]", "[1, 2, 3, 4294967296]"), 400, ErrorKind::kWrongDatatype,
              "inputs[0].data[3]: 4294967296 is out of range for INT32");
  ExpectError(Body("UINT8", "[1, 4]", "[1, 2, -1, 4]"), 400, ErrorKind::kWrongDatatype,
              "inputs[0].data[2]: -1 is out of range for UINT8 [0, 255]");
  ExpectError(Body("UINT8", "[1, 4]", "[1, 256, 3, 4]"), 400, ErrorKind::kWrongDatatype,
              "inputs[0].data[1]: 256 is out of range for UINT8");
  ExpectError(Body("BOOL", "[1, 4]", "[1, 0, 1, 1]"), 400, ErrorKind::kWrongDatatype,
              "inputs[0].data[0]: expected true or false for BOOL");
}

TEST(InferCodec, RefusesShapesAndLengths) {
  ExpectError(Body("FP32", "[1, -4]", "[1, 2, 3, 4]"), 400, ErrorKind::kWrongShape,
              "inputs[0].shape[1]: dimensions must be >= 0 (got -4)");
  ExpectError(Body("FP32", "[1, \"4\"]", "[1, 2, 3, 4]"), 400, ErrorKind::kMalformed,
              "inputs[0].shape[1]: expected a non-negative integer");
  ExpectError(Body("FP32", "[1, 4]", "[1, 2, 3]"), 400, ErrorKind::kWrongShape,
              "inputs[0].data: 3 elements, shape [1,4] needs 4");
  ExpectError(Body("FP32", "[2, 4]", "[1, 2, 3, 4]"), 400, ErrorKind::kWrongShape,
              "inputs[0].data: 4 elements, shape [2,4] needs 8");
  ExpectError(Body("FP32", "[2, 4]", "[[1, 2, 3, 4], [5, 6, 7]]"), 400, ErrorKind::kWrongShape,
              "inputs[0].data[1]: expected an array of 4");
  ExpectError(Body("FP32", "[2, 4]", "[[1, 2, 3, 4], 5, 6, 7, 8]"), 400, ErrorKind::kWrongShape,
              "inputs[0].data: expected an array of 2 (nested row-major for shape [2,4]), got an "
              "array of 5");
  ExpectError(Body("FP32", "[2, 4]", "[[1, 2, 3, 4], 5]"), 400, ErrorKind::kWrongShape,
              "inputs[0].data[1]: expected an array of 4 (nested row-major for shape [2,4]), got "
              "an integer");
  ExpectError(Body("FP32", "[1, 4]", "[[[1], 2, 3, 4]]"), 400, ErrorKind::kWrongShape,
              "inputs[0].data[0][0]: nested deeper than shape [1,4]");
  ExpectError(Body("FP32", "[1, 4]", "[1, [2], 3, 4]"), 400, ErrorKind::kWrongShape,
              "inputs[0].data[1]: mixes nested arrays and elements");
  ExpectError(Body("FP32", "[1, 3]", "[1, 2, 3]"), 400, ErrorKind::kWrongShape,
              "inputs[0].shape: expected [-1,1,2,2] or [-1,4], got [1,3]");
}

TEST(InferCodec, RefusesNonFiniteWithTheElementIndex) {
  ExpectError(Body("FP32", "[1, 4]", R"([1, 2, "NaN", 4])"), 400, ErrorKind::kNonFinite,
              "inputs[0].data[2]: NaN is not allowed (element 2)");
  ExpectError(Body("FP32", "[1, 4]", R"([1, 2, 3, "-Infinity"])"), 400, ErrorKind::kNonFinite,
              "inputs[0].data[3]: -Infinity is not allowed");
  ExpectError(Body("FP32", "[1, 4]", "[1, 1e39, 3, 4]"), 400, ErrorKind::kNonFinite,
              "inputs[0].data[1]: Inf (FP32 overflow) is not allowed");
  // The index is the flat row-major one, also for nested data.
  ExpectError(Body("FP32", "[2, 4]", R"([[1, 2, 3, 4], [5, "nan", 7, 8]])"), 400,
              ErrorKind::kNonFinite, "inputs[0].data[5]: nan is not allowed (element 5)");
  // A number beyond double is refused too, however the parser takes it.
  auto huge = DecodeInferRequest(Body("FP64", "[1, 4]", "[1, 1e400, 3, 4]"), Tiny());
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.error().http_status, 400);
  // 1e39 is a fine FP64.
  EXPECT_TRUE(DecodeInferRequest(Body("FP64", "[1, 4]", "[1, 1e39, 3, 4]"), Tiny()).ok());
}

TEST(InferCodec, RefusesTooLargeWith413) {
  CodecLimits small;
  small.max_body_bytes = 64;
  ExpectError(Body("FP32", "[1, 4]", "[1, 2, 3, 4]"), 413, ErrorKind::kTooLarge,
              "request body: ", Tiny(), small);
  CodecLimits rows;
  rows.max_rows = 2;
  ExpectError(Body("FP32", "[3, 4]", "[0,0,0,0,0,0,0,0,0,0,0,0]"), 413, ErrorKind::kTooLarge,
              "inputs[0].shape[0]: 3 rows exceed the limit of 2 per request", Tiny(), rows);
  CodecLimits elements;
  elements.max_elements = 7;
  ExpectError(Body("FP32", "[2, 4]", "[0,0,0,0,0,0,0,0]"), 413, ErrorKind::kTooLarge,
              "inputs[0].shape: [2,4] has more than 7 elements", Tiny(), elements);
  // A product that overflows 64 bits is refused, not wrapped.
  ExpectError(Body("FP32", "[4611686018427387904, 4]", "[]"), 413, ErrorKind::kTooLarge,
              "inputs[0].shape: [4611686018427387904,4] has more than");
}

TEST(InferCodec, SurvivesDeepNesting) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  auto r = DecodeInferRequest(Body("FP32", "[1, 4]", deep), Tiny());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().http_status, 400);
}

TEST(InferCodec, MutatedBodiesNeverCrash) {
  const std::string valid =
      Body("FP32", "[2, 1, 2, 2]", "[[[[1, 2], [3, 4]]], [[[5, 6], [7, 8]]]]",
           R"(, "parameters": {"a": 1}, "outputs": [{"name": "logits"}])");
  const std::string alphabet = "[]{}\",:-0123456789.eE truefalsnul\xff";
  std::mt19937 rng(7);
  int accepted = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string body = valid;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = rng() % body.size();
      switch (rng() % 3) {
        case 0: body[pos] = alphabet[rng() % alphabet.size()]; break;
        case 1: body.erase(pos, 1 + rng() % 8); break;
        default: body.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
      }
      if (body.empty()) body = "{";
    }
    auto r = DecodeInferRequest(body, Tiny());
    if (r.ok()) {
      ++accepted;
      EXPECT_EQ(r->inputs.size(), 1u);
    } else {
      EXPECT_TRUE(r.error().http_status == 400 || r.error().http_status == 413) << body;
      EXPECT_FALSE(EncodeError(r.error()).empty());
    }
  }
  EXPECT_LT(accepted, 3000);
}

TEST(InferCodec, ResponseRoundTrips) {
  InferResponse resp{"tiny", "3", "r1", {}, {}};
  resp.outputs.push_back({"logits", {2, 3}, DataType::kFp32,
                          std::vector<float>{0.5f, -1.25f, 3, 4, 5, 6}, {}});
  const std::string body = EncodeInferResponse(resp);
  EXPECT_NE(body.find(R"("model_version":"3")"), std::string::npos) << body;
  auto back = DecodeInferResponse(body);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->model_name, "tiny");
  EXPECT_EQ(back->model_version, "3");
  EXPECT_EQ(back->id, "r1");
  ASSERT_EQ(back->outputs.size(), 1u);
  EXPECT_EQ(back->outputs[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(back->outputs[0].ToFloat(), (std::vector<float>{0.5f, -1.25f, 3, 4, 5, 6}));
}

TEST(InferCodec, EncodesMetadataAndErrors) {
  const std::string m = EncodeModelMetadata(Fashion());
  EXPECT_NE(m.find(R"("shape":[-1,1,28,28])"), std::string::npos) << m;
  EXPECT_NE(m.find(R"("versions":["1"])"), std::string::npos) << m;
  EXPECT_NE(m.find(R"("datatype":"FP32")"), std::string::npos) << m;
  EXPECT_EQ(EncodeError(ApiError::TooLarge("request body: too big")),
            R"({"error":"request body: too big"})");
  // Invalid UTF-8 quoted from a request does not make the encoder throw.
  EXPECT_NE(EncodeError(ApiError::BadRequest(ErrorKind::kMalformed, "bad \xff")).find("error"),
            std::string::npos);
}

TEST(InferCodec, MapsStatusesToHttp) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(StatusCode::kResourceExhausted), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kInternal), 500);
  const ApiError e = ApiErrorFromStatus(Status::ResourceExhausted("serving queue full"));
  EXPECT_EQ(e.http_status, 503);
  EXPECT_EQ(e.kind, ErrorKind::kOverloaded);
}

TEST(InferCodec, DecodesFeedback) {
  auto fb = DecodeFeedbackRequest(R"({"id": "r1", "label": 3})");
  ASSERT_TRUE(fb.ok()) << fb.error().message;
  EXPECT_EQ(fb->id, "r1");
  EXPECT_EQ(fb->label, 3);
  auto neg = DecodeFeedbackRequest(R"({"id": "r1", "label": -1})");
  ASSERT_FALSE(neg.ok());
  EXPECT_EQ(neg.error().message.rfind("label: expected a class index >= 0", 0), 0u);
  auto noid = DecodeFeedbackRequest(R"({"label": 1})");
  ASSERT_FALSE(noid.ok());
  EXPECT_EQ(noid.error().message, "id: missing");
}

}  // namespace
}  // namespace gantry::serving
