#include "common/protocol.h"

#include <gtest/gtest.h>

#include <random>

namespace gantry {
namespace {

TEST(Protocol, RequestRoundTrip) {
  Request req{"submit_job", "abc123", "tok", {{"spec", {{"name", "x"}, {"n", 3}}}}};
  auto back = DecodeRequest(EncodeRequest(req));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->type, "submit_job");
  EXPECT_EQ(back->id, "abc123");
  EXPECT_EQ(back->auth, "tok");
  EXPECT_EQ(back->body["spec"]["n"], 3);
}

TEST(Protocol, ReplyRoundTripOkAndError) {
  Reply ok{"r1", Status::Ok(), {{"job_id", "j-1"}}};
  auto a = DecodeReply(EncodeReply(ok));
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->status.ok());
  EXPECT_EQ(a->body["job_id"], "j-1");

  Reply err{"r2", Status::NotFound("no job j-9"), {}};
  auto b = DecodeReply(EncodeReply(err));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->status.code(), StatusCode::kNotFound);
  EXPECT_EQ(b->status.message(), "no job j-9");
}

TEST(Protocol, BinaryPayloadSurvives) {
  std::vector<uint8_t> bytes(1000);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7);
  Request req{"save", "1", "", {{"data", json::binary(bytes)}}};
  auto back = DecodeRequest(EncodeRequest(req));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->body["data"].get_binary(), bytes);
}

TEST(Protocol, RejectsNonMapAndWrongVersion) {
  EXPECT_EQ(DecodeRequest(ToMsgpack(json::array({1, 2}))).status().code(), StatusCode::kInvalidArgument);
  auto v2 = DecodeRequest(ToMsgpack({{"v", 2}, {"type", "ping"}, {"id", "x"}}));
  EXPECT_FALSE(v2.ok());
  EXPECT_NE(v2.status().message().find("protocol version 2"), std::string::npos);
  auto no_type = DecodeRequest(ToMsgpack({{"v", 1}, {"id", "x"}}));
  EXPECT_NE(no_type.status().message().find("'type'"), std::string::npos);
  auto bad_body = DecodeRequest(ToMsgpack({{"v", 1}, {"type", "t"}, {"body", 5}}));
  EXPECT_NE(bad_body.status().message().find("'body'"), std::string::npos);
}

TEST(Protocol, RejectsTruncatedAndTrailingBytes) {
  std::string good = EncodeRequest({"ping", "1", "", {}});
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(DecodeRequest(good.substr(0, n)).ok()) << "prefix of " << n << " bytes";
  }
  EXPECT_FALSE(DecodeRequest(good + "x").ok());
}

TEST(Protocol, RejectsDeepNestingWithoutRecursing) {
  // 1M nested one-element arrays would overflow a recursive parser's stack.
  std::string deep(1 << 20, '\x91');
  deep.push_back('\x01');
  auto r = ParseMsgpack(deep);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nesting"), std::string::npos);
}

TEST(Protocol, RejectsLyingLengths) {
  // array32 claiming 4 billion elements in a 5-byte message.
  std::string arr = "\xdd\xff\xff\xff\xff";
  EXPECT_FALSE(ParseMsgpack(arr).ok());
  // str32 claiming 4 GiB.
  std::string str = "\xdb\xff\xff\xff\xff" "abc";
  EXPECT_FALSE(ParseMsgpack(str).ok());
  // map16 with 65535 pairs but no content.
  std::string map = "\xde\xff\xff";
  EXPECT_FALSE(ParseMsgpack(map).ok());
}

TEST(Protocol, RandomGarbageNeverCrashes) {
  std::mt19937 rng(7);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 64, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    auto r = DecodeRequest(s);
    accepted += r.ok();
  }
  EXPECT_LT(accepted, 20000);
}

TEST(Protocol, MutatedValidMessagesNeverCrash) {
  std::string good = EncodeRequest({"submit_job", "id", "", {{"spec", {{"a", {1, 2, 3}}, {"b", "text"}}}}});
  std::mt19937 rng(11);
  for (int i = 0; i < 20000; ++i) {
    std::string s = good;
    for (int k = 0; k < 3; ++k) s[rng() % s.size()] = static_cast<char>(rng());
    (void)DecodeRequest(s);  // must return, never throw or crash
  }
  SUCCEED();
}

TEST(Protocol, TypedGettersNameTheField) {
  json body = {{"n", "seven"}};
  auto r = GetInt(body, "n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "field 'n' must be an integer");
  EXPECT_EQ(GetInt(body, "missing", 5).value(), 5);
  EXPECT_FALSE(GetString(body, "missing").ok());
}

}  // namespace
}  // namespace gantry
