// The checkpoint data plane's storage half (storage/inbox.h): a file in the
// inbox (written directly or by put_chunk) commits as a version through
// save_checkpoint_file; torn, mixed-up or misnamed files are refused; the
// file never outlives its request, nor a restart.
#include "storage/inbox.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/fast_checksum.h"
#include "storage/blob_store.h"
#include "storage/storage_service.h"
#include "tests/storage/test_support.h"

namespace gantry::storage {
namespace {

using testing::Pattern;

class InboxTest : public ::testing::Test {
 protected:
  InboxTest() : registry_(std::move(Registry::Open(dir_.path(), clock_)).value()), server_(ctx_, {}) {
    RegisterStorageHandlers(server_, registry_);
  }
  Reply Call(const std::string& type, const json& body) {
    auto rep = DecodeReply(server_.Dispatch(EncodeRequest({type, "req-1", "", body})));
    EXPECT_TRUE(rep.ok()) << rep.status().ToString();
    return std::move(rep).value();
  }
  std::string Inbox() { return Call("checkpoint_inbox", json::object()).body["dir"]; }
  void WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  // a (100 bytes) then b (64 bytes: int32 [16]) back to back; their layout.
  json Layout(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    return json::array({{{"name", "a"}, {"dtype", "uint8"}, {"shape", {a.size()}}, {"offset", 0},
                         {"bytes", a.size()}, {"checksum", FastChecksum(a.data(), a.size())}},
                        {{"name", "b"}, {"dtype", "int32"}, {"shape", {b.size() / 4}}, {"offset", a.size()},
                         {"bytes", b.size()}, {"checksum", FastChecksum(b.data(), b.size())}}});
  }
  json Body(const std::string& file, json layout) {
    return {{"model", "m"}, {"step", 7}, {"job_id", "j-1"}, {"request_id", "inbox-test-0001"}, {"file", file},
            {"tensors", std::move(layout)}};
  }

  testing::TempDir dir_;
  ManualClock clock_;
  Registry registry_;
  zmq::context_t ctx_;
  RpcServer server_;
  std::vector<uint8_t> a_ = Pattern(100, 1), b_ = Pattern(64, 2);
};

ino_t Inode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

std::vector<uint8_t> Concat(std::vector<uint8_t> x, const std::vector<uint8_t>& y) {
  x.insert(x.end(), y.begin(), y.end());
  return x;
}

TEST_F(InboxTest, SameHostFileCommitsAVersionAndIsRemoved) {
  Reply info = Call("checkpoint_inbox", json::object());
  ASSERT_TRUE(info.status.ok()) << info.status.ToString();
  const std::string dir = info.body["dir"];
  std::ifstream token(dir + "/.token");
  std::string t;
  token >> t;
  EXPECT_EQ(t, info.body["token"]) << "the same-host check reads this file";
  EXPECT_EQ(t.size(), 32u);

  WriteFile(dir + "/abc-1.part", Concat(a_, b_));
  Reply saved = Call("save_checkpoint_file", Body("abc-1.part", Layout(a_, b_)));
  ASSERT_TRUE(saved.status.ok()) << saved.status.ToString();
  EXPECT_EQ(saved.body["version"], 1);
  EXPECT_FALSE(std::filesystem::exists(dir + "/abc-1.part")) << "the inbox file outlived its request";
  auto loaded = registry_.Load("m", 1);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_EQ(loaded->data.size(), 2u);
  EXPECT_EQ(loaded->data[0], a_);
  EXPECT_EQ(loaded->data[1], b_);
  EXPECT_EQ(loaded->manifest.prov.step, 7);
  EXPECT_EQ(loaded->manifest.prov.job_id, "j-1");
}

// The data plane writes a save's bytes to disk once: a file that is mostly
// new blobs is renamed into place as the version's pack; one that is mostly
// blobs the registry already holds is copied from (only its new bytes).
TEST_F(InboxTest, AMostlyNewFileBecomesThePackAndAMostlySharedOneIsCopied) {
  const std::string dir = Inbox();
  BlobStore blobs(dir_.path());
  auto pack_sizes = [&] {
    std::vector<uint64_t> sizes;
    const std::vector<std::string> packs = blobs.ListPacks().value();
    for (const std::string& p : packs) sizes.push_back(blobs.PackSize(p).value());
    std::sort(sizes.begin(), sizes.end());
    return sizes;
  };
  WriteFile(dir + "/new-1.part", Concat(a_, b_));
  const ino_t inode = Inode(dir + "/new-1.part");
  ASSERT_NE(inode, 0u);
  ASSERT_TRUE(Call("save_checkpoint_file", Body("new-1.part", Layout(a_, b_))).status.ok());
  EXPECT_EQ(pack_sizes(), std::vector<uint64_t>{a_.size() + b_.size()});
  EXPECT_EQ(Inode(blobs.Path(blobs.ListPacks().value().at(0))), inode) << "the file was copied, not taken";

  // v2: a and b unchanged (shared), c new: 20 of 184 bytes are new.
  const std::vector<uint8_t> c = Pattern(20, 3);
  json layout = Layout(a_, b_);
  layout.push_back({{"name", "c"}, {"dtype", "uint8"}, {"shape", {c.size()}}, {"offset", a_.size() + b_.size()},
                    {"bytes", c.size()}, {"checksum", FastChecksum(c.data(), c.size())}});
  json body = Body("shared-2.part", layout);
  body["request_id"] = "inbox-test-0002";
  WriteFile(dir + "/shared-2.part", Concat(Concat(a_, b_), c));
  Reply saved = Call("save_checkpoint_file", body);
  ASSERT_TRUE(saved.status.ok()) << saved.status.ToString();
  EXPECT_EQ(saved.body["version"], 2);
  EXPECT_EQ(pack_sizes(), (std::vector<uint64_t>{c.size(), a_.size() + b_.size()}));
  EXPECT_FALSE(std::filesystem::exists(dir + "/shared-2.part"));

  for (int64_t v : {1, 2}) {
    auto loaded = registry_.Load("m", v);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(loaded->data[0], a_);
    EXPECT_EQ(loaded->data[1], b_);
  }
  EXPECT_EQ(registry_.Load("m", 2)->data[2], c);
  auto fsck = registry_.Fsck(false);
  ASSERT_TRUE(fsck.ok()) << fsck.status().ToString();
  EXPECT_TRUE(fsck->ok) << "an adopted pack must look like any other";
}

TEST_F(InboxTest, ChunksFromARemoteWriterCommitTheSameWay) {
  const auto all = Concat(a_, b_);
  const std::vector<uint8_t> first(all.begin(), all.begin() + 70), second(all.begin() + 70, all.end());
  ASSERT_TRUE(Call("put_chunk", {{"file", "r-2.part"}, {"offset", 0}, {"data", json::binary(first)}}).status.ok());
  Reply put = Call("put_chunk", {{"file", "r-2.part"}, {"offset", 70}, {"data", json::binary(second)}});
  ASSERT_TRUE(put.status.ok()) << put.status.ToString();
  EXPECT_EQ(put.body["bytes"], all.size());
  Reply saved = Call("save_checkpoint_file", Body("r-2.part", Layout(a_, b_)));
  ASSERT_TRUE(saved.status.ok()) << saved.status.ToString();
  auto loaded = registry_.Load("m", 1);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->data[1], b_);
}

TEST_F(InboxTest, TornMixedUpAndMisnamedFilesAreRefused) {
  const std::string dir = Inbox();
  // Torn: the file ends inside tensor b.
  WriteFile(dir + "/t-1.part", std::vector<uint8_t>(a_.begin(), a_.end()));
  Reply torn = Call("save_checkpoint_file", Body("t-1.part", Layout(a_, b_)));
  EXPECT_EQ(torn.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(torn.status.message().find("ends at byte 164 of a 100-byte inbox file"), std::string::npos)
      << torn.status.ToString();
  EXPECT_FALSE(std::filesystem::exists(dir + "/t-1.part"));
  // Mixed up: right size, other bytes.
  WriteFile(dir + "/t-2.part", Concat(b_, a_));
  Reply bad = Call("save_checkpoint_file", Body("t-2.part", Layout(a_, b_)));
  EXPECT_EQ(bad.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status.message().find("does not match its checksum"), std::string::npos) << bad.status.ToString();
  // Names that could leave the folder; a file that is not there.
  for (const char* name : {"../registry.db", "x/../../y.part", ".token", "UPPER.part", "a.part/.."}) {
    Reply r = Call("save_checkpoint_file", Body(name, Layout(a_, b_)));
    EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument) << name;
    Reply p = Call("put_chunk", {{"file", name}, {"offset", 0}, {"data", json::binary(std::vector<uint8_t>{1})}});
    EXPECT_EQ(p.status.code(), StatusCode::kInvalidArgument) << name;
  }
  EXPECT_EQ(Call("save_checkpoint_file", Body("gone.part", Layout(a_, b_))).status.code(), StatusCode::kNotFound);
  EXPECT_FALSE(registry_.ListVersions("m").ok()) << "no version may come of a refused file";
}

TEST(InboxOpen, ARestartEmptiesTheInboxAndChangesTheToken) {
  testing::TempDir dir;
  auto first = Inbox::Open(dir.path());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(first->PutChunk("left-1.part", 0, std::vector<uint8_t>{1, 2, 3}).ok());
  ASSERT_TRUE(std::filesystem::exists(first->dir() + "/left-1.part"));
  auto second = Inbox::Open(dir.path());
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(std::filesystem::exists(second->dir() + "/left-1.part"));
  EXPECT_NE(first->token(), second->token());
}

}  // namespace
}  // namespace gantry::storage
