// gantry-serve's infer route over real HTTP on loopback, in one process with a
// fake model (no LibTorch forward): the asynchronous completion (JSON and the
// binary tensor extension, answered from the batcher), 400s for bad binary
// sizes, a client gone before its batch ran, and a hot swap while requests
// wait. Synchronisation by gates and events, never by sleeping.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <memory>
#include <numeric>
#include <string>

#include "common/http/server.h"
#include "serving/deployed_model.h"
#include "serving/serve_routes.h"
#include "tests/monitor/http_test_client.h"
#include "tests/serving/serving_test_util.h"

namespace gantry::serving {
namespace {

using namespace std::chrono_literals;
using http::testing::Fetch;
using http::testing::RawConn;
using testing::Gate;

// Rows of 4; each output row is [sum, max, version]. A gate (optional) holds
// every forward until opened.
class FakeModel : public Servable {
 public:
  FakeModel(std::string version, Gate* gate = nullptr) : version_(std::move(version)), gate_(gate) {}
  const std::string& version() const override { return version_; }
  Result<std::vector<float>> Forward(const BatchInput& in) const override {
    if (gate_ != nullptr) gate_->Pass();
    std::vector<float> out;
    for (size_t r = 0; r < in.rows; ++r) {
      const float* row = in.data.data() + r * in.row_size;
      out.push_back(std::accumulate(row, row + in.row_size, 0.0f));
      out.push_back(*std::max_element(row, row + in.row_size));
      out.push_back(std::stof(version_));
    }
    return out;
  }

 private:
  std::string version_;
  Gate* gate_;
};

ModelMetadata Meta() {
  return {"m", {"1"}, "fake", {{"input", DataType::kFp32, {{-1, 4}}}}, {{"logits", DataType::kFp32, {{-1, 3}}}}};
}

class ServeHttpTest : public ::testing::Test {
 protected:
  void Start(Gate* gate = nullptr) {
    DeploymentOptions o;
    o.name = "m";
    o.registry_model = "m";
    o.ref = "v1";
    o.row_size = 4;
    o.max_batch = 8;
    model_ = std::make_unique<DeployedModel>(o, ServingMetricsOptions{});
    model_->Install(std::make_shared<FakeModel>("1", gate), Meta());
    auto router = MakeServeRouter({model_.get()});
    ASSERT_TRUE(router.ok());
    http::HttpServerOptions ho;
    ho.port = 0;
    ho.threads = 2;
    ho.server_name = "gantry-serve";
    server_ = std::make_unique<http::HttpServer>(ho, *router);
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }

  static EncodedBody BinaryRequest(std::vector<float> values, bool binary_output) {
    InferRequest req;
    req.id = "q";
    Tensor t;
    t.name = "input";
    t.shape = {static_cast<int64_t>(values.size() / 4), 4};
    t.data = std::move(values);
    req.inputs.push_back(std::move(t));
    if (binary_output) req.parameters["binary_data_output"] = true;
    return EncodeInferRequest(req, {"input"});
  }

  http::testing::Reply Post(const std::string& body, std::map<std::string, std::string> headers = {}) {
    return Fetch(server_->port(), "POST", "/v2/models/m/infer", headers, body);
  }

  std::unique_ptr<DeployedModel> model_;
  std::unique_ptr<http::HttpServer> server_;
};

TEST_F(ServeHttpTest, BinaryRequestAndBinaryResponse) {
  Start();
  EncodedBody enc = BinaryRequest({1, 2, 3, 4, 0.5f, 0.5f, 0.5f, 9}, true);
  auto r = Post(enc.body, {{kInferenceHeaderContentLength, std::to_string(enc.json_length)}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["X-Model-Version"], "1");
  EXPECT_EQ(r.headers["Content-Type"], "application/octet-stream");
  ASSERT_EQ(r.headers.count(kInferenceHeaderContentLength), 1u);
  const uint64_t hl = std::stoull(r.headers[kInferenceHeaderContentLength]);
  EXPECT_EQ(r.body.size(), hl + 6 * sizeof(float));
  auto resp = DecodeInferResponse(r.body, hl);
  ASSERT_TRUE(resp.ok()) << resp.error().message;
  EXPECT_EQ(resp->id, "q");
  EXPECT_EQ(resp->outputs[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(resp->outputs[0].ToFloat(), (std::vector<float>{10, 4, 1, 10.5f, 9, 1}));

  // Binary in, JSON out (no binary output asked): the response is JSON only.
  EncodedBody in_only = BinaryRequest({1, 1, 1, 1}, false);
  auto j = Post(in_only.body, {{kInferenceHeaderContentLength, std::to_string(in_only.json_length)}});
  ASSERT_EQ(j.status, 200) << j.body;
  EXPECT_EQ(j.headers.count(kInferenceHeaderContentLength), 0u);
  auto jr = DecodeInferResponse(j.body);
  ASSERT_TRUE(jr.ok()) << jr.error().message;
  EXPECT_EQ(jr->outputs[0].ToFloat(), (std::vector<float>{4, 1, 1}));

  // Plain JSON keeps working exactly as before.
  auto plain = Post(R"({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]})");
  ASSERT_EQ(plain.status, 200) << plain.body;
  EXPECT_NE(plain.body.find("\"data\":[10.0,4.0,1.0]"), std::string::npos) << plain.body;
}

// The statistics route that `gantry deployments` reads its REQ/S from.
TEST_F(ServeHttpTest, StatsCountRequestsRowsAndBatches) {
  Start();
  EncodedBody two_rows = BinaryRequest({1, 2, 3, 4, 5, 6, 7, 8}, true);
  const std::map<std::string, std::string> h = {{kInferenceHeaderContentLength, std::to_string(two_rows.json_length)}};
  ASSERT_EQ(Post(two_rows.body, h).status, 200);
  ASSERT_EQ(Post(two_rows.body, h).status, 200);
  ASSERT_EQ(Post(R"({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]})").status, 400);
  auto r = Fetch(server_->port(), "GET", "/v2/models/m/stats", {}, "");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = nlohmann::json::parse(r.body);
  const auto& s = j.at("model_stats").at(0);
  EXPECT_EQ(s.at("name"), "m");
  EXPECT_EQ(s.at("version"), "1");
  EXPECT_EQ(s.at("request_count"), 3);
  EXPECT_EQ(s.at("success_count"), 2);
  EXPECT_EQ(s.at("fail_count"), 1);
  EXPECT_EQ(s.at("inference_count"), 4);  // rows
  EXPECT_EQ(s.at("execution_count"), 2);  // batches (one request each, sent one after the other)
  EXPECT_EQ(Fetch(server_->port(), "GET", "/v2/models/nope/stats", {}, "").status, 404);
}

TEST_F(ServeHttpTest, BadBinarySizesAre400NamingTheField) {
  Start();
  EncodedBody enc = BinaryRequest({1, 2, 3, 4}, true);
  auto cut = Post(enc.body.substr(0, enc.body.size() - 4),
                  {{kInferenceHeaderContentLength, std::to_string(enc.json_length)}});
  EXPECT_EQ(cut.status, 400);
  EXPECT_NE(cut.body.find("inputs[0].parameters.binary_data_size: 16 bytes, but only 12"), std::string::npos) << cut.body;
  EXPECT_EQ(cut.headers["X-Model-Version"], "1");
  auto longer = Post(enc.body, {{kInferenceHeaderContentLength, std::to_string(enc.body.size() + 10)}});
  EXPECT_EQ(longer.status, 400);
  EXPECT_NE(longer.body.find("Inference-Header-Content-Length: " + std::to_string(enc.body.size() + 10) +
                             " exceeds the body's"),
            std::string::npos)
      << longer.body;
  auto junk = Post(enc.body, {{kInferenceHeaderContentLength, "x12"}});
  EXPECT_EQ(junk.status, 400);
  EXPECT_NE(junk.body.find("Inference-Header-Content-Length: expected"), std::string::npos) << junk.body;
  EXPECT_EQ(Post(enc.body).status, 400);  // no header: the binary tail is not JSON
  // The server keeps serving.
  auto ok = Post(enc.body, {{kInferenceHeaderContentLength, std::to_string(enc.json_length)}});
  EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST_F(ServeHttpTest, ClientGoneBeforeItsBatchRan) {
  Gate gate;
  Start(&gate);
  EncodedBody enc = BinaryRequest({1, 2, 3, 4}, true);
  {
    RawConn conn(server_->port());
    ASSERT_TRUE(conn.connected());
    ASSERT_TRUE(conn.Send("POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\n" + std::string(kInferenceHeaderContentLength) +
                          ": " + std::to_string(enc.json_length) + "\r\nContent-Length: " +
                          std::to_string(enc.body.size()) + "\r\n\r\n" + enc.body));
    ASSERT_TRUE(gate.WaitEntered(1));  // its batch is running
  }  // the client leaves
  // Another request waits behind it (queued for the worker, not a thread).
  auto waiting = std::async(std::launch::async, [&] {
    return Post(enc.body, {{kInferenceHeaderContentLength, std::to_string(enc.json_length)}});
  });
  ASSERT_TRUE(testing::WaitFor([&] { return model_->batcher_stats().queued_requests == 1; }));
  gate.Open();
  ASSERT_EQ(waiting.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(waiting.get().status, 200);
  EXPECT_EQ(Fetch(server_->port(), "GET", "/v2/health/live").status, 200);
  EXPECT_TRUE(testing::WaitFor([&] { return model_->batcher_stats().requests == 2; }));
}

TEST_F(ServeHttpTest, RequestsInFlightFinishOnTheOldVersionAcrossASwap) {
  Gate gate;
  Start(&gate);
  EncodedBody enc = BinaryRequest({1, 1, 1, 1}, true);
  const std::map<std::string, std::string> h = {{kInferenceHeaderContentLength, std::to_string(enc.json_length)}};
  auto first = std::async(std::launch::async, [&] { return Post(enc.body, h); });
  ASSERT_TRUE(gate.WaitEntered(1));  // running on version 1
  auto queued = std::async(std::launch::async, [&] { return Post(enc.body, h); });
  ASSERT_TRUE(testing::WaitFor([&] { return model_->batcher_stats().queued_requests == 1; }));
  model_->Install(std::make_shared<FakeModel>("2"), Meta());
  gate.Open();
  auto a = first.get();
  auto b = queued.get();
  ASSERT_EQ(a.status, 200) << a.body;
  ASSERT_EQ(b.status, 200) << b.body;
  EXPECT_EQ(a.headers["X-Model-Version"], "1");  // in flight at the swap: the old version
  EXPECT_EQ(b.headers["X-Model-Version"], "2");  // batched after it: the new one
  auto ra = DecodeInferResponse(a.body, std::stoull(a.headers[kInferenceHeaderContentLength]));
  ASSERT_TRUE(ra.ok()) << ra.error().message;
  EXPECT_EQ(ra->outputs[0].ToFloat()[2], 1.0f);
}

}  // namespace
}  // namespace gantry::serving
