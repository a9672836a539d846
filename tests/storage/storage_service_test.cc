#include "storage/storage_service.h"

#include <gtest/gtest.h>

#include "tests/storage/test_support.h"

namespace gantry::storage {
namespace {

// Drives the handlers through RpcServer::Dispatch: the full decode/encode
// path of the wire protocol without sockets.
class StorageServiceTest : public ::testing::Test {
 protected:
  StorageServiceTest()
      : registry_(std::move(Registry::Open(dir_.path(), clock_)).value()), server_(ctx_, {}) {
    RegisterStorageHandlers(server_, registry_);
  }

  Reply Call(const std::string& type, const json& body) {
    auto rep = DecodeReply(server_.Dispatch(EncodeRequest({type, "req-1", "", body})));
    EXPECT_TRUE(rep.ok()) << rep.status().ToString();
    EXPECT_EQ(rep->id, "req-1");
    return std::move(rep).value();
  }

  testing::TempDir dir_;
  ManualClock clock_;
  Registry registry_;
  zmq::context_t ctx_;
  RpcServer server_;
};

json SaveBody(const std::string& model) {
  return {{"model", model}, {"step", 1},
          {"tensors", {{{"name", "w"}, {"dtype", "int32"}, {"shape", {2}},
                        {"data", json::binary(std::vector<uint8_t>(8, 1))}}}}};
}

TEST_F(StorageServiceTest, SaveListAndGetOverTheProtocol) {
  Reply saved = Call("save_checkpoint", SaveBody("m"));
  ASSERT_TRUE(saved.status.ok()) << saved.status.ToString();
  EXPECT_EQ(saved.body["model"], "m");
  EXPECT_EQ(saved.body["version"], 1);
  EXPECT_EQ(saved.body["bytes"], 8);

  Reply list = Call("list_versions", {{"model", "m"}});
  ASSERT_TRUE(list.status.ok());
  EXPECT_EQ(list.body["versions"][0]["version"], 1);
  EXPECT_EQ(list.body["versions"][0]["job_id"], "");

  Reply models = Call("list_models", json::object());
  ASSERT_TRUE(models.status.ok());
  EXPECT_EQ(models.body["models"][0]["name"], "m");

  Reply got = Call("get_version", {{"model", "m"}, {"version", 1}});
  ASSERT_TRUE(got.status.ok());
  EXPECT_EQ(got.body["tensors"][0]["dtype"], "int32");
  EXPECT_EQ(got.body["path"], saved.body["path"]);
}

TEST_F(StorageServiceTest, BadRequestsGetErrorReplies) {
  Reply r = Call("save_checkpoint", SaveBody("a/b"));
  EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status.message().find("model 'a/b'"), std::string::npos);
  r = Call("list_versions", json::object());
  EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status.message().find("'model' is required"), std::string::npos);
  r = Call("list_versions", {{"model", "ghost"}});
  EXPECT_EQ(r.status.code(), StatusCode::kNotFound);
  r = Call("get_version", {{"model", "m"}, {"version", 0}});
  EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument);
  r = Call("get_version", {{"model", "m"}, {"version", "1"}});
  EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument);

  auto garbage = DecodeReply(server_.Dispatch("\xc1 not msgpack"));
  ASSERT_TRUE(garbage.ok());
  EXPECT_EQ(garbage->status.code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gantry::storage
