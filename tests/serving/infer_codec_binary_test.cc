// The KServe v2 binary tensor extension in the codec: round trips of binary
// inputs and outputs, mixed JSON and binary inputs, and every size mismatch
// refused with a 400 naming the field.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "serving/infer_codec.h"

namespace gantry::serving {
namespace {

ModelMetadata Tiny() {
  return {"tiny", {"3"}, "gantry_builtin",
          {{"input", DataType::kFp32, {{-1, 1, 2, 2}, {-1, 4}}}},
          {{"logits", DataType::kFp32, {{-1, 3}}}}};
}

// Two inputs (an image and a per-row id) and two outputs.
ModelMetadata TwoInputs() {
  return {"two", {"1"}, "gantry_builtin",
          {{"image", DataType::kFp32, {{-1, 4}}}, {"row_id", DataType::kInt64, {{-1, 1}}}},
          {{"logits", DataType::kFp32, {{-1, 3}}}, {"label", DataType::kInt64, {{-1}}}}};
}

Tensor Fp32(const std::string& name, std::vector<int64_t> shape, std::vector<float> v) {
  Tensor t;
  t.name = name;
  t.shape = std::move(shape);
  t.datatype = DataType::kFp32;
  t.data = std::move(v);
  return t;
}

template <typename T>
std::string Raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// The request's JSON header with `input` declaring `size` binary bytes.
std::string Header(int64_t size, const std::string& shape = "[2, 4]", const std::string& datatype = "FP32") {
  return R"({"inputs": [{"name": "input", "datatype": ")" + datatype + R"(", "shape": )" + shape +
         R"(, "parameters": {"binary_data_size": )" + std::to_string(size) + "}}]}";
}

void ExpectBad(const ApiResult<InferRequest>& r, int status, const std::string& prefix) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().http_status, status) << r.error().message;
  EXPECT_EQ(r.error().message.rfind(prefix, 0), 0u)
      << "message: " << r.error().message << "\nwanted prefix: " << prefix;
}

TEST(InferCodecBinary, RequestRoundTrip) {
  InferRequest req;
  req.id = "b1";
  req.inputs.push_back(Fp32("input", {2, 4}, {1, 2, 3, 4, 5, 6, 7, 8.25f}));
  EncodedBody enc = EncodeInferRequest(req, {"input"});
  EXPECT_EQ(enc.body.size(), enc.json_length + 8 * sizeof(float));
  EXPECT_EQ(enc.body.find("\"data\""), std::string::npos);  // no JSON numbers
  auto r = DecodeInferRequest(enc.body, Tiny(), {}, enc.json_length);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->id, "b1");
  EXPECT_EQ(r->inputs[0].shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(r->inputs[0].ToFloat(), (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8.25f}));
  // The same request as JSON decodes to the same values (JSON unchanged).
  EncodedBody plain = EncodeInferRequest(req);
  EXPECT_EQ(plain.json_length, plain.body.size());
  auto j = DecodeInferRequest(plain.body, Tiny());
  ASSERT_TRUE(j.ok()) << j.error().message;
  EXPECT_EQ(j->inputs[0].ToFloat(), r->inputs[0].ToFloat());
}

TEST(InferCodecBinary, OtherDatatypesAndHeaderParsing) {
  const std::vector<uint8_t> bytes = {0, 1, 2, 255};
  auto r = DecodeInferRequest(Header(4, "[1, 4]", "UINT8") + Raw(bytes), Tiny(), {}, Header(4, "[1, 4]", "UINT8").size());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->inputs[0].ToFloat(), (std::vector<float>{0, 1, 2, 255}));
  const std::vector<double> d = {0.5, 1, 2, 3};
  auto f64 = DecodeInferRequest(Header(32, "[1, 4]", "FP64") + Raw(d), Tiny(), {}, Header(32, "[1, 4]", "FP64").size());
  ASSERT_TRUE(f64.ok()) << f64.error().message;
  EXPECT_EQ(f64->inputs[0].ToFloat(), (std::vector<float>{0.5f, 1, 2, 3}));

  auto none = ParseInferenceHeaderLength("");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none.value().has_value());
  auto n = ParseInferenceHeaderLength("120");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), std::optional<uint64_t>(120));
  for (const char* bad : {"-1", "12a", " 5", "99999999999999999999"}) {
    auto b = ParseInferenceHeaderLength(bad);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.error().http_status, 400);
    EXPECT_EQ(b.error().message.rfind("Inference-Header-Content-Length: ", 0), 0u) << b.error().message;
  }
}

TEST(InferCodecBinary, WrongBinaryDataSizeIsRefusedNamingTheField) {
  const std::string raw = Raw(std::vector<float>(8, 1.0f));
  // Declares 28 bytes for 2x4 FP32 (32 needed).
  const std::string h = Header(28);
  ExpectBad(DecodeInferRequest(h + raw.substr(0, 28), Tiny(), {}, h.size()), 400,
            "inputs[0].parameters.binary_data_size: 28 bytes, but shape [2,4] of FP32 needs 32 (8 elements x 4 bytes)");
  // Declares more than the body holds.
  const std::string h2 = Header(32);
  ExpectBad(DecodeInferRequest(h2 + raw.substr(0, 20), Tiny(), {}, h2.size()), 400,
            "inputs[0].parameters.binary_data_size: 32 bytes, but only 20 bytes");
  // Bytes left over after every input.
  ExpectBad(DecodeInferRequest(h2 + raw + "xyz", Tiny(), {}, h2.size()), 400,
            "request body: 35 bytes of binary data follow the JSON header, but the inputs' binary_data_size add up to 32");
  // Not a byte count.
  const std::string neg = R"({"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 4], "parameters": {"binary_data_size": -4}}]})";
  ExpectBad(DecodeInferRequest(neg + raw, Tiny(), {}, neg.size()), 400,
            "inputs[0].parameters.binary_data_size: expected a byte count >= 0");
  // Both data and binary_data_size.
  const std::string both = R"({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4], "parameters": {"binary_data_size": 16}}]})";
  ExpectBad(DecodeInferRequest(both + raw.substr(0, 16), Tiny(), {}, both.size()), 400,
            "inputs[0]: has both data and parameters.binary_data_size");
  // binary_data_size without the header.
  ExpectBad(DecodeInferRequest(h2, Tiny()), 400,
            "inputs[0].parameters.binary_data_size: binary data needs the Inference-Header-Content-Length header");
  // The shape is still checked against the model first.
  const std::string h3 = Header(12, "[1, 3]");
  ExpectBad(DecodeInferRequest(h3 + raw.substr(0, 12), Tiny(), {}, h3.size()), 400,
            "inputs[0].shape: expected [-1,1,2,2] or [-1,4], got [1,3]");
}

TEST(InferCodecBinary, HeaderLengthLargerThanBody) {
  const std::string h = Header(32);
  const std::string body = h + Raw(std::vector<float>(8, 1.0f));
  ExpectBad(DecodeInferRequest(body, Tiny(), {}, body.size() + 1), 400,
            "Inference-Header-Content-Length: " + std::to_string(body.size() + 1) + " exceeds the body's " +
                std::to_string(body.size()) + " bytes");
  // A header length that cuts the JSON short is invalid JSON.
  ExpectBad(DecodeInferRequest(body, Tiny(), {}, h.size() - 3), 400, "request body: invalid JSON");
}

TEST(InferCodecBinary, NonFiniteBinaryValuesAreRefused) {
  std::vector<float> v(8, 1.0f);
  v[5] = std::numeric_limits<float>::quiet_NaN();
  const std::string h = Header(32);
  auto r = DecodeInferRequest(h + Raw(v), Tiny(), {}, h.size());
  ExpectBad(r, 400, "inputs[0].binary_data[5]: NaN is not allowed (element 5)");
  EXPECT_EQ(r.error().kind, ErrorKind::kNonFinite);
  v[5] = std::numeric_limits<float>::infinity();
  ExpectBad(DecodeInferRequest(h + Raw(v), Tiny(), {}, h.size()), 400, "inputs[0].binary_data[5]: Inf");
}

TEST(InferCodecBinary, MixedJsonAndBinaryInputs) {
  InferRequest req;
  req.inputs.push_back(Fp32("image", {2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}));
  Tensor ids;
  ids.name = "row_id";
  ids.shape = {2, 1};
  ids.datatype = DataType::kInt64;
  ids.data = std::vector<int64_t>{7, 9};
  req.inputs.push_back(ids);
  // The image in binary, the ids as JSON; then the other way round.
  for (const std::string binary : {"image", "row_id"}) {
    EncodedBody enc = EncodeInferRequest(req, {binary});
    auto r = DecodeInferRequest(enc.body, TwoInputs(), {}, enc.json_length);
    ASSERT_TRUE(r.ok()) << binary << ": " << r.error().message;
    EXPECT_EQ(r->inputs[0].ToFloat(), (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}));
    EXPECT_EQ(std::get<std::vector<int64_t>>(r->inputs[1].data), (std::vector<int64_t>{7, 9}));
  }
  // Both binary: their bytes follow in the order of `inputs`.
  EncodedBody both = EncodeInferRequest(req, {"image", "row_id"});
  EXPECT_EQ(both.body.size(), both.json_length + 32 + 16);
  auto r = DecodeInferRequest(both.body, TwoInputs(), {}, both.json_length);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(std::get<std::vector<int64_t>>(r->inputs[1].data), (std::vector<int64_t>{7, 9}));
}

TEST(InferCodecBinary, BinaryOutputsAreChosenByTheRequestAndRoundTrip) {
  const std::string base = R"({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
                                           {"name": "row_id", "datatype": "INT64", "shape": [1, 1], "data": [3]}])";
  auto none = DecodeInferRequest(base + "}", TwoInputs());
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(BinaryOutputs(none.value(), TwoInputs()).empty());
  auto all = DecodeInferRequest(base + R"(, "parameters": {"binary_data_output": true}})", TwoInputs());
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ(BinaryOutputs(all.value(), TwoInputs()), (std::set<std::string>{"label", "logits"}));
  // Per output, overriding the request-level setting.
  auto one = DecodeInferRequest(base + R"(, "parameters": {"binary_data_output": true},
      "outputs": [{"name": "label", "parameters": {"binary_data": false}}]})", TwoInputs());
  ASSERT_TRUE(one.ok()) << one.error().message;
  EXPECT_EQ(BinaryOutputs(one.value(), TwoInputs()), (std::set<std::string>{"logits"}));
  auto listed = DecodeInferRequest(base + R"(, "outputs": [{"name": "logits", "parameters": {"binary_data": true}}]})",
                                   TwoInputs());
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  EXPECT_EQ(BinaryOutputs(listed.value(), TwoInputs()), (std::set<std::string>{"logits"}));

  InferResponse resp;
  resp.model_name = "two";
  resp.model_version = "1";
  resp.id = "r9";
  resp.outputs.push_back(Fp32("logits", {2, 3}, {0.5f, -1, 2, 3, 4, 5.75f}));
  Tensor label;
  label.name = "label";
  label.shape = {2};
  label.datatype = DataType::kInt64;
  label.data = std::vector<int64_t>{2, 1};
  resp.outputs.push_back(label);
  EncodedBody enc = EncodeInferResponse(resp, {"logits"});
  EXPECT_EQ(enc.body.size(), enc.json_length + 6 * sizeof(float));
  EXPECT_NE(enc.body.substr(0, enc.json_length).find("\"binary_data_size\":24"), std::string::npos)
      << enc.body.substr(0, enc.json_length);
  auto back = DecodeInferResponse(enc.body, enc.json_length);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->model_version, "1");
  EXPECT_EQ(back->id, "r9");
  ASSERT_EQ(back->outputs.size(), 2u);
  EXPECT_EQ(back->outputs[0].ToFloat(), (std::vector<float>{0.5f, -1, 2, 3, 4, 5.75f}));
  EXPECT_EQ(std::get<std::vector<int64_t>>(back->outputs[1].data), (std::vector<int64_t>{2, 1}));
  // Without the header the client cannot find the bytes: a clear error.
  auto lost = DecodeInferResponse(enc.body);
  EXPECT_FALSE(lost.ok());
  // The JSON-only encoding is unchanged by the new overload.
  EXPECT_EQ(EncodeInferResponse(resp, {}).body, EncodeInferResponse(resp));
}

}  // namespace
}  // namespace gantry::serving
