#include "storage/storage_service.h"

#include <gtest/gtest.h>

#include <set>

#include "common/ids.h"
#include "storage/torch_io.h"
#include "tests/storage/test_support.h"

namespace gantry::storage {
namespace {

using testing::ByteTensor;
using testing::Pattern;

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
  json Ok(const std::string& type, const json& body) {
    Reply r = Call(type, body);
    EXPECT_TRUE(r.status.ok()) << type << ": " << r.status.ToString();
    return r.body;
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

  json list = Ok("list_versions", {{"model", "m"}});
  EXPECT_EQ(list["versions"][0]["version"], 1);
  EXPECT_EQ(list["versions"][0]["job_id"], "");

  json models = Ok("list_models", json::object());
  EXPECT_EQ(models["models"][0]["name"], "m");

  json got = Ok("get_version", {{"model", "m"}, {"version", 1}});
  EXPECT_EQ(got["tensors"][0]["dtype"], "int32");
  EXPECT_EQ(got["path"], saved.body["path"]);
  EXPECT_EQ(Ok("get_version", {{"model", "m"}, {"ref", "latest"}})["version"], 1);
}

TEST_F(StorageServiceTest, SaveWithARepeatedRequestIdAnswersTheFirstVersion) {
  json body = SaveBody("m");
  body["request_id"] = NewRequestId();
  Reply first = Call("save_checkpoint", body);
  ASSERT_TRUE(first.status.ok()) << first.status.ToString();
  EXPECT_EQ(first.body["deduplicated"], false);
  Reply again = Call("save_checkpoint", body);
  ASSERT_TRUE(again.status.ok()) << again.status.ToString();
  EXPECT_EQ(again.body["version"], first.body["version"]);
  EXPECT_EQ(again.body["deduplicated"], true);
  EXPECT_EQ(Ok("list_versions", {{"model", "m"}})["versions"].size(), 1u);

  for (const json& bad : {json(42), json("short"), json("has space in it!")}) {
    body["request_id"] = bad;
    Reply r = Call("save_checkpoint", body);
    EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument) << bad.dump();
    EXPECT_NE(r.status.message().find("request_id"), std::string::npos) << r.status.message();
  }
}

TEST_F(StorageServiceTest, RegistryRequestsRoundTrip) {
  json body = {{"model", "m"}, {"step", 10}, {"job_id", "j-1"}, {"metrics", {{"loss", 0.5}}},
               {"data_fingerprint", "fp-1"}, {"trainer_state", {{"sampler_offset", 640}}},
               {"tensors", {ByteTensor("w", Pattern(70000, 1)), ByteTensor("optimizer/w.momentum", Pattern(70000, 2))}}};
  ASSERT_EQ(Ok("save_checkpoint", body)["version"], 1);
  body["step"] = 20;
  body["parent_version"] = 1;
  body["tensors"][0] = ByteTensor("w", Pattern(70000, 3));
  json v2 = Ok("save_checkpoint", body);
  EXPECT_EQ(v2["tensors_shared"], 1);

  EXPECT_EQ(Ok("set_alias", {{"model", "m"}, {"alias", "production"}, {"ref", "v1"}})["version"], 1);
  json show = Ok("show_version", {{"model", "m"}, {"ref", "production"}});
  EXPECT_EQ(show["version"], 1);
  EXPECT_EQ(show["trainer_state"]["sampler_offset"], 640);

  json loaded = Ok("load_checkpoint", {{"model", "m"}, {"ref", "latest"}, {"include", "model"}});
  EXPECT_EQ(loaded["version"], 2);
  ASSERT_EQ(loaded["tensors"].size(), 1u);
  EXPECT_EQ(static_cast<const std::vector<uint8_t>&>(loaded["tensors"][0]["data"].get_binary()), Pattern(70000, 3));
  EXPECT_EQ(Ok("load_checkpoint", {{"model", "m"}})["tensors"].size(), 2u);
  // `also` names training-state tensors wanted beside the model's.
  json also = Ok("load_checkpoint", {{"model", "m"}, {"include", "model"}, {"also", {"optimizer/w.momentum"}}});
  ASSERT_EQ(also["tensors"].size(), 2u);
  EXPECT_EQ(also["tensors"][1]["name"], "optimizer/w.momentum");
  EXPECT_EQ(Ok("load_checkpoint", {{"model", "m"}, {"include", "model"}, {"also", {"trainer/none"}}})["tensors"].size(),
            1u);
  EXPECT_EQ(Call("load_checkpoint", {{"model", "m"}, {"also", "w"}}).status.code(), StatusCode::kInvalidArgument);
  // A resuming worker asks for its own job's newest version, or a number.
  EXPECT_EQ(Ok("load_checkpoint", {{"model", "m"}, {"job_id", "j-1"}})["version"], 2);
  EXPECT_EQ(Ok("load_checkpoint", {{"model", "m"}, {"version", 1}})["step"], 10);
  EXPECT_EQ(Call("load_checkpoint", {{"model", "m"}, {"job_id", "j-2"}}).status.code(), StatusCode::kNotFound);

  json diff = Ok("diff_versions", {{"a", {{"model", "m"}, {"ref", "v1"}}}, {"b", {{"model", "m"}, {"ref", "v2"}}}});
  EXPECT_EQ(diff["summary"]["changed"], 1);
  json lineage = Ok("lineage", {{"model", "m"}, {"ref", "v2"}});
  EXPECT_EQ(lineage["parent"]["version"], 1);
  EXPECT_EQ(lineage["data_fingerprint"], "fp-1");

  EXPECT_EQ(Ok("tag_version", {{"model", "m"}, {"ref", "v2"}, {"tag", "best"}, {"protect", true}})["protect"], true);
  EXPECT_EQ(Ok("untag_version", {{"model", "m"}, {"ref", "v2"}, {"tag", "best"}})["tag"], "best");
  json ret = Ok("set_retention", {{"model", "m"}, {"keep_latest", 1}});
  EXPECT_EQ(ret["expired"], json::array());  // v1 is aliased
  EXPECT_EQ(Ok("get_retention", {{"model", "m"}})["retention"]["keep_latest"], 1);
  EXPECT_EQ(Ok("remove_alias", {{"model", "m"}, {"alias", "production"}})["version"], 1);
  json gc = Ok("gc", {{"model", "m"}});
  EXPECT_EQ(gc["expired"][0]["versions"], json::array({1}));
  EXPECT_EQ(Ok("fsck", json::object())["ok"], true);
  EXPECT_EQ(Ok("set_retention", {{"model", "m"}, {"keep_all", true}})["retention"], nullptr);

  Reply del = Call("delete_version", {{"model", "m"}});
  EXPECT_NE(del.status.message().find("'ref' is required"), std::string::npos);
  EXPECT_EQ(Ok("delete_version", {{"model", "m"}, {"ref", "v2"}})["version"], 2);
}

std::set<std::string> Keys(const json& j) {
  std::set<std::string> out;
  for (const auto& [k, v] : j.items()) out.insert(k);
  return out;
}

// Every reply keeps the fields docs/protocol.md lists (the CLI and the
// worker read them), now that the registry returns structs.
TEST_F(StorageServiceTest, RepliesHaveTheDocumentedFields) {
  json body = {{"model", "m"}, {"step", 10}, {"metrics", {{"loss", 0.5}}},
               {"tensors", {ByteTensor("w", Pattern(70000, 1)), ByteTensor("b", Pattern(10, 2))}}};
  json saved = Ok("save_checkpoint", body);
  EXPECT_EQ(Keys(saved), (std::set<std::string>{"model", "version", "path", "bytes", "bytes_written",
                                                "tensors_shared", "expired", "deduplicated"}));
  body["tensors"][1] = ByteTensor("b", Pattern(10, 3));
  body["parent_version"] = 1;
  ASSERT_EQ(Ok("save_checkpoint", body)["version"], 2);
  json list = Ok("list_versions", {{"model", "m"}});
  EXPECT_EQ(Keys(list), (std::set<std::string>{"model", "versions", "retention"}));
  EXPECT_EQ(Keys(list["versions"][0]),
            (std::set<std::string>{"version", "job_id", "attempt", "step", "epoch", "metrics", "bytes",
                                   "bytes_written", "path", "created_at", "aliases", "tags"}));
  EXPECT_EQ(Keys(Ok("list_models", json::object())["models"][0]),
            (std::set<std::string>{"name", "versions", "latest", "bytes_written"}));
  const std::set<std::string> manifest = {"format", "model", "version", "job_id", "attempt", "step", "epoch",
                                          "created_at", "metrics", "meta", "optimizer_state", "trainer_state",
                                          "lineage", "bytes", "hash_algorithm", "tensors"};
  std::set<std::string> with_path = manifest;
  with_path.insert("path");
  EXPECT_EQ(Keys(Ok("get_version", {{"model", "m"}, {"version", 1}})), with_path);
  std::set<std::string> shown = with_path;
  shown.insert({"aliases", "tags", "protected", "bytes_written"});
  EXPECT_EQ(Keys(Ok("show_version", {{"model", "m"}, {"ref", "v1"}})), shown);
  EXPECT_EQ(Keys(Ok("load_checkpoint", {{"model", "m"}})), with_path);
  json lineage = Ok("lineage", {{"model", "m"}});
  const std::set<std::string> entry = {"model", "version", "job_id", "attempt", "step", "epoch", "metrics",
                                       "created_at", "data_fingerprint", "parent"};
  std::set<std::string> top = entry;
  top.insert("ancestors");
  EXPECT_EQ(Keys(lineage), top);
  std::set<std::string> ancestor = entry;
  ancestor.insert("exists");
  EXPECT_EQ(Keys(lineage["ancestors"][0]), ancestor);
  json diff = Ok("diff_versions", {{"a", {{"model", "m"}, {"ref", "v1"}}}, {"b", {{"model", "m"}}}});
  EXPECT_EQ(Keys(diff), (std::set<std::string>{"a", "b", "summary", "tensors"}));
  EXPECT_EQ(Keys(diff["summary"]),
            (std::set<std::string>{"changed", "unchanged", "added", "removed", "bytes_changed", "bytes_total"}));
  EXPECT_EQ(Keys(diff["tensors"][0]), (std::set<std::string>{"name", "dtype", "shape", "bytes", "status", "shared"}));
  EXPECT_EQ(Keys(diff["tensors"][1]), (std::set<std::string>{"name", "dtype", "shape", "bytes", "status", "stats"}));
  EXPECT_EQ(Keys(diff["tensors"][1]["stats"]), (std::set<std::string>{"elements", "changed", "changed_fraction",
                                                                      "max_abs_diff", "l2_diff", "rel_l2"}));
  EXPECT_EQ(Keys(Ok("set_alias", {{"model", "m"}, {"alias", "prod"}, {"ref", "v1"}})),
            (std::set<std::string>{"model", "alias", "version", "previous"}));
  EXPECT_EQ(Keys(Ok("remove_alias", {{"model", "m"}, {"alias", "prod"}})),
            (std::set<std::string>{"model", "alias", "version"}));
  EXPECT_EQ(Keys(Ok("tag_version", {{"model", "m"}, {"ref", "v1"}, {"tag", "t"}})),
            (std::set<std::string>{"model", "version", "tag", "protect"}));
  EXPECT_EQ(Keys(Ok("untag_version", {{"model", "m"}, {"ref", "v1"}, {"tag", "t"}})),
            (std::set<std::string>{"model", "version", "tag"}));
  EXPECT_EQ(Keys(Ok("set_retention", {{"model", "m"}, {"keep_latest", 5}})),
            (std::set<std::string>{"model", "retention", "expired"}));
  json retention = Ok("get_retention", {{"model", "m"}});
  EXPECT_EQ(Keys(retention), (std::set<std::string>{"model", "retention"}));
  EXPECT_EQ(Keys(retention["retention"]), (std::set<std::string>{"keep_latest", "keep_best", "metric", "mode"}));
  json gc = Ok("gc", {{"dry_run", true}});
  EXPECT_EQ(Keys(gc), (std::set<std::string>{"dry_run", "expired", "paths_deleted", "packs_compacted",
                                             "bytes_freed", "swept"}));
  EXPECT_EQ(Keys(gc["swept"]), (std::set<std::string>{"removed", "quarantined"}));
  EXPECT_EQ(Keys(Ok("fsck", json::object())),
            (std::set<std::string>{"ok", "versions_checked", "blobs_checked", "packs_checked", "bytes_checked",
                                   "problems", "repaired", "remaining"}));
  EXPECT_EQ(Keys(Ok("delete_version", {{"model", "m"}, {"ref", "v1"}})),
            (std::set<std::string>{"model", "version", "bytes_freed"}));
}

// `ref` may be an integer N (as "vN") in every request that takes one.
TEST_F(StorageServiceTest, IntegerRefsNameVersions) {
  for (int i = 1; i <= 3; ++i) {
    json body = SaveBody("m");
    body["step"] = i;
    ASSERT_EQ(Ok("save_checkpoint", body)["version"], i);
  }
  EXPECT_EQ(Ok("get_version", {{"model", "m"}, {"ref", 2}})["step"], 2);
  EXPECT_EQ(Ok("show_version", {{"model", "m"}, {"ref", 2}})["version"], 2);
  EXPECT_EQ(Ok("load_checkpoint", {{"model", "m"}, {"ref", 1}})["version"], 1);
  EXPECT_EQ(Ok("lineage", {{"model", "m"}, {"ref", 3}})["version"], 3);
  json diff = Ok("diff_versions", {{"a", {{"model", "m"}, {"ref", 1}}}, {"b", {{"model", "m"}, {"ref", 2}}}});
  EXPECT_EQ(diff["a"]["version"], 1);
  EXPECT_EQ(diff["b"]["version"], 2);
  EXPECT_EQ(Ok("set_alias", {{"model", "m"}, {"alias", "prod"}, {"ref", 2}})["version"], 2);
  EXPECT_EQ(Ok("tag_version", {{"model", "m"}, {"ref", 1}, {"tag", "t"}})["version"], 1);
  EXPECT_EQ(Ok("untag_version", {{"model", "m"}, {"ref", 1}, {"tag", "t"}})["version"], 1);
  EXPECT_EQ(Ok("delete_version", {{"model", "m"}, {"ref", 3}})["version"], 3);
  Reply r = Call("export_version", {{"model", "m"}, {"ref", 1}});
  if (TorchInteropAvailable()) {
    EXPECT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.body["version"], 1);
  }
  // A number names a version, so it must be one; other types are refused.
  r = Call("show_version", {{"model", "m"}, {"ref", 3}});
  EXPECT_EQ(r.status.code(), StatusCode::kNotFound);
  for (const json& bad : {json(0), json(-2), json(1.5), json(true), json::array({1})}) {
    r = Call("show_version", {{"model", "m"}, {"ref", bad}});
    EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument) << bad.dump();
    EXPECT_NE(r.status.message().find("show_version: field 'ref'"), std::string::npos) << r.status.message();
  }
  r = Call("delete_version", {{"model", "m"}, {"ref", 0}});
  EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Ok("list_versions", {{"model", "m"}})["versions"].size(), 2u);
}

TEST_F(StorageServiceTest, ExportWithoutLibTorchSaysSo) {
  ASSERT_TRUE(Call("save_checkpoint", SaveBody("m")).status.ok());
  Reply r = Call("export_version", {{"model", "m"}, {"ref", "v1"}, {"format", "onnx"}});
  EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status.message().find("only 'torch'"), std::string::npos);
  r = Call("export_version", {{"model", "m"}, {"ref", "v1"}, {"format", "torch"}});
  if (TorchInteropAvailable()) {
    EXPECT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_GT(r.body["data"].get_binary().size(), 8u);
  } else {
    EXPECT_EQ(r.status.code(), StatusCode::kUnavailable);
    EXPECT_NE(r.status.message().find("built without LibTorch"), std::string::npos);
  }
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
  r = Call("show_version", {{"model", "../../etc"}, {"ref", "latest"}});
  EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status.message().find("model '../../etc'"), std::string::npos);
  r = Call("set_alias", {{"model", "m"}, {"alias", "../x"}, {"ref", "v1"}});
  EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status.message().find("alias '../x'"), std::string::npos);
  r = Call("load_checkpoint", {{"model", "m"}, {"ref", "v1/../../x"}});
  EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument);
  r = Call("fsck", {{"repair", "yes"}});
  EXPECT_NE(r.status.message().find("'repair' must be true or false"), std::string::npos);
  r = Call("diff_versions", {{"a", "m@v1"}});
  EXPECT_NE(r.status.message().find("field 'a' must be a map"), std::string::npos);
  r = Call("import_version", {{"model", "m"}, {"data", "not binary"}});
  EXPECT_NE(r.status.message().find("'data' must be binary"), std::string::npos);

  auto garbage = DecodeReply(server_.Dispatch("\xc1 not msgpack"));
  ASSERT_TRUE(garbage.ok());
  EXPECT_EQ(garbage->status.code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gantry::storage
