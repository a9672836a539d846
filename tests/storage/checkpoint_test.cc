#include "storage/checkpoint.h"

#include <gtest/gtest.h>

#include <cstring>

namespace gantry::storage {
namespace {

json Tensor(const std::string& name, const std::string& dtype, std::vector<int64_t> shape, size_t bytes) {
  return {{"name", name}, {"dtype", dtype}, {"shape", shape},
          {"data", json::binary(std::vector<uint8_t>(bytes, 7))}};
}

json Body(json tensors) {
  return {{"model", "mnist"}, {"job_id", "j-1"}, {"attempt", 1}, {"step", 10}, {"epoch", 2},
          {"metrics", {{"loss", 0.5}}}, {"meta", {{"lr", 0.1}}}, {"tensors", std::move(tensors)}};
}

std::string Error(const json& body) {
  auto c = ParseCheckpoint(body);
  EXPECT_FALSE(c.ok());
  if (c.ok()) return "";
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  return c.status().message();
}

TEST(CheckpointTest, ParsesAValidBodyWithoutCopyingData) {
  json body = Body({Tensor("w", "float32", {2, 3}, 24), Tensor("b", "bfloat16", {3}, 6),
                    Tensor("flag", "bool", {}, 1)});
  auto c = ParseCheckpoint(body);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->prov.model, "mnist");
  EXPECT_EQ(c->prov.step, 10);
  ASSERT_EQ(c->tensors.size(), 3u);
  EXPECT_EQ(c->tensors[0].dtype, DType::kFloat32);
  EXPECT_EQ(c->tensors[0].data.data(), body["tensors"][0]["data"].get_binary().data());
  EXPECT_EQ(c->DataBytes(), 31u);
}

TEST(CheckpointTest, RefusesBadModelNamesNamingTheField) {
  for (const char* name : {"../x", "a/b", "", ".hidden"}) {
    json body = Body(json::array());
    body["model"] = name;
    EXPECT_NE(Error(body).find("model"), std::string::npos) << name;
  }
  json body = Body(json::array());
  body.erase("model");
  EXPECT_NE(Error(body).find("'model' is required"), std::string::npos);
}

TEST(CheckpointTest, RefusesDataOfTheWrongSize) {
  json body = Body({Tensor("a", "int8", {4}, 4), Tensor("w", "float32", {10, 10}, 399)});
  EXPECT_EQ(Error(body), "save_checkpoint: tensors[1].data has 399 bytes, shape [10,10] float32 needs 400");
}

TEST(CheckpointTest, RefusesShapesThatOverflow) {
  json body = Body({Tensor("w", "float64", {1LL << 40, 1LL << 40}, 8)});
  EXPECT_NE(Error(body).find("needs more than 2^64"), std::string::npos);
}

TEST(CheckpointTest, RefusesBadTensorFields) {
  EXPECT_NE(Error(Body({Tensor("w", "float8", {1}, 1)})).find("tensors[0].dtype 'float8' is not one of"),
            std::string::npos);
  EXPECT_NE(Error(Body({Tensor("", "int8", {1}, 1)})).find("tensors[0].name must not be empty"),
            std::string::npos);
  EXPECT_NE(Error(Body({Tensor("a", "int8", {1}, 1), Tensor("a", "int8", {1}, 1)}))
                .find("tensors[1].name 'a' appears twice"),
            std::string::npos);
  EXPECT_NE(Error(Body({Tensor("a/../b", "int8", {1}, 1)})).find("tensors[0].name"), std::string::npos);
  EXPECT_NE(Error(Body({Tensor("/a", "int8", {1}, 1)})).find("tensors[0].name"), std::string::npos);
  EXPECT_NE(Error(Body({Tensor("a", "int8", {-1}, 1)})).find("tensors[0].shape[0]"), std::string::npos);
  json t = Tensor("a", "int8", {1}, 1);
  t["data"] = json::array({1});
  EXPECT_NE(Error(Body({t})).find("tensors[0].data must be binary"), std::string::npos);
  EXPECT_NE(Error(Body({42})).find("tensors[0] must be a map"), std::string::npos);
  EXPECT_NE(Error(Body("x")).find("tensors must be a list"), std::string::npos);
}

TEST(CheckpointTest, RefusesBadScalarsAndMetrics) {
  json body = Body(json::array());
  body["step"] = -1;
  EXPECT_NE(Error(body).find("step must be >= 0"), std::string::npos);
  body = Body(json::array());
  body["step"] = "ten";
  EXPECT_NE(Error(body).find("'step' must be an integer"), std::string::npos);
  body = Body(json::array());
  body["metrics"] = {{"loss", "low"}};
  EXPECT_NE(Error(body).find("metrics.loss must be a number"), std::string::npos);
  body = Body(json::array());
  body["meta"] = 3;
  EXPECT_NE(Error(body).find("meta must be a map"), std::string::npos);
}

}  // namespace
}  // namespace gantry::storage
