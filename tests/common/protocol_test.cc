#include "common/protocol.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
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

// What a decode of arbitrary bytes may do: succeed with a request that
// survives re-encoding unchanged, or fail with invalid_argument and a
// message. Anything else (another code, an empty message, a request that
// changes on the way round) is a decoder bug.
void ExpectDecodedOrRefused(const std::string& bytes, int* accepted) {
  auto r = DecodeRequest(bytes);
  if (!r.ok()) {
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
    EXPECT_FALSE(r.status().message().empty());
    return;
  }
  ++*accepted;
  auto again = DecodeRequest(EncodeRequest(*r));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->type, r->type);
  EXPECT_EQ(again->id, r->id);
  EXPECT_EQ(again->auth, r->auth);
  EXPECT_EQ(again->body, r->body);
}

TEST(Protocol, RandomGarbageIsRefusedWithInvalidArgument) {
  std::mt19937 rng(7);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 64, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    ExpectDecodedOrRefused(s, &accepted);
  }
  // A random string is a map with v: 1 and a string type by chance only;
  // for this seed, never.
  EXPECT_EQ(accepted, 0);
}

TEST(Protocol, MutatedValidMessagesDecodeOrAreRefused) {
  std::string good = EncodeRequest({"submit_job", "id", "", {{"spec", {{"a", {1, 2, 3}}, {"b", "text"}}}}});
  std::mt19937 rng(11);
  int accepted = 0;
  const int total = 20000;
  for (int i = 0; i < total; ++i) {
    std::string s = good;
    for (int k = 0; k < 3; ++k) s[rng() % s.size()] = static_cast<char>(rng());
    ExpectDecodedOrRefused(s, &accepted);
  }
  // Both fates occur: a changed letter in a string still decodes, a changed
  // type byte does not.
  const int refused = total - accepted;
  EXPECT_GT(accepted, 0);
  EXPECT_GT(refused, 0);
}

TEST(Protocol, DecodeReportsTheIdBeforeLaterErrors) {
  std::string id = "unset";
  EXPECT_FALSE(DecodeRequest(ToMsgpack({{"v", 9}, {"type", "t"}, {"id", "r-9"}}), &id).ok());
  EXPECT_EQ(id, "r-9");
  id = "unset";
  EXPECT_FALSE(DecodeRequest(ToMsgpack({{"v", 1}, {"id", "r-no-type"}}), &id).ok());
  EXPECT_EQ(id, "r-no-type");
  id = "unset";
  EXPECT_FALSE(DecodeRequest(ToMsgpack({{"v", 1}, {"type", "t"}, {"id", 5}}), &id).ok());
  EXPECT_EQ(id, "unset") << "a non-string id is not reported";
  id = "unset";
  EXPECT_FALSE(DecodeRequest("\xc1", &id).ok());
  EXPECT_EQ(id, "unset");
}

TEST(Protocol, TypedGettersNameTheField) {
  json body = {{"n", "seven"}};
  auto r = GetInt(body, "n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "field 'n' must be an integer");
  EXPECT_EQ(GetInt(body, "missing", 5).value(), 5);
  EXPECT_FALSE(GetString(body, "missing").ok());
}


// ---------------------------------------------------------------------------
// The codec (common/msgpack.h): round trips, compatibility with nlohmann's
// to_msgpack/from_msgpack both ways, and hostile input.

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 31 + seed + (i >> 8));
  return v;
}

std::string Text(size_t n) {
  std::string s(n, 'a');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

// Values at every boundary where MessagePack changes encoding.
std::vector<json> EdgeValues() {
  std::vector<json> v = {nullptr, true, false, json::object(), json::array()};
  const uint64_t int64_max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  for (uint64_t u : std::vector<uint64_t>{0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, int64_max,
                                          int64_max + 1, std::numeric_limits<uint64_t>::max()}) {
    v.push_back(json(u));  // number_unsigned
    if (u <= int64_max) v.push_back(json(static_cast<int64_t>(u)));
  }
  for (int64_t i : {int64_t{-1}, int64_t{-31}, int64_t{-32}, int64_t{-33}, int64_t{-127}, int64_t{-128},
                    int64_t{-129}, int64_t{-32767}, int64_t{-32768}, int64_t{-32769}, int64_t{-2147483647},
                    int64_t{-2147483647} - 1, int64_t{-2147483647} - 2, std::numeric_limits<int64_t>::min() + 1,
                    std::numeric_limits<int64_t>::min()}) {
    v.push_back(json(i));
  }
  for (double d : {0.0, -0.0, 0.5, -1.25, 0.1, 1e300, -1e-300, 3.4028234663852886e38, -3.4028234663852886e38,
                   3.5e38, 1.401298464324817e-45, 5e-324, std::numeric_limits<double>::infinity(),
                   -std::numeric_limits<double>::infinity()}) {
    v.push_back(json(d));
  }
  for (size_t n : {0, 1, 31, 32, 255, 256, 65535, 65536, 70000}) v.push_back(Text(n));
  for (size_t n : {0, 1, 255, 256, 65535, 65536, 70000}) v.push_back(json::binary(Pattern(n, 3)));
  // With a subtype a binary is an ext: fixext 1/2/4/8/16, ext 8/16/32.
  for (size_t n : {1, 2, 3, 4, 8, 16, 17, 255, 256, 65535, 65536}) {
    v.push_back(json::binary(Pattern(n, 5), static_cast<uint8_t>(n % 256)));
  }
  v.push_back(json::binary(Pattern(4, 1), 0xff));  // ext type -1
  for (size_t n : {15, 16, 65535, 65536}) {
    json arr = json::array();
    for (size_t i = 0; i < n; ++i) arr.push_back(i % 3 == 0 ? json(i) : i % 3 == 1 ? json("s") : json(nullptr));
    v.push_back(std::move(arr));
    json map = json::object();
    for (size_t i = 0; i < n; ++i) map["k" + std::to_string(i)] = i;
    v.push_back(std::move(map));
  }
  // Mixed nesting.
  v.push_back({{"a", {1, -2, 3.5, "x", nullptr, true, json::binary({1, 2, 3})}},
               {"b", {{"c", {{"d", {{"e", json::array({json::object(), json::array()})}}}}}}},
               {"", json::binary({})}});
  return v;
}

TEST(Msgpack, EdgeValuesRoundTripAndMatchNlohmannBothWays) {
  for (const json& v : EdgeValues()) {
    const std::string ours = ToMsgpack(v);
    const std::vector<uint8_t> theirs = json::to_msgpack(v);
    // Same choices as nlohmann, so the same bytes.
    EXPECT_EQ(ours, std::string(theirs.begin(), theirs.end())) << v.dump().substr(0, 200);
    // nlohmann reads ours; we read theirs; both give back v.
    EXPECT_EQ(json::from_msgpack(ours), v) << v.dump().substr(0, 200);
    auto back = ParseMsgpack(std::string_view(reinterpret_cast<const char*>(theirs.data()), theirs.size()));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, v) << v.dump().substr(0, 200);
    // Integers keep nlohmann's typing (signed vs unsigned) too.
    EXPECT_EQ(back->type(), json::from_msgpack(theirs).type());
    if (v.is_binary()) {
      EXPECT_EQ(back->get_binary().has_subtype(), v.get_binary().has_subtype());
      if (v.get_binary().has_subtype()) {
        EXPECT_EQ(back->get_binary().subtype(), v.get_binary().subtype());
      }
    }
  }
}

TEST(Msgpack, EncodingSizesAreTheSmallest) {
  EXPECT_EQ(ToMsgpack(127).size(), 1u);
  EXPECT_EQ(ToMsgpack(128).size(), 2u);
  EXPECT_EQ(ToMsgpack(-32).size(), 1u);
  EXPECT_EQ(ToMsgpack(-33).size(), 2u);
  EXPECT_EQ(ToMsgpack(65536).size(), 5u);
  EXPECT_EQ(ToMsgpack(0.5).size(), 5u);  // float32 when exact
  EXPECT_EQ(ToMsgpack(0.1).size(), 9u);
  EXPECT_EQ(ToMsgpack(Text(31)).size(), 32u);
  EXPECT_EQ(ToMsgpack(Text(32)).size(), 34u);
  EXPECT_EQ(ToMsgpack(json::binary(Pattern(256, 0))).size(), 259u);
  EXPECT_EQ(ToMsgpack(json::binary(Pattern(4, 0), 7)).size(), 6u);  // fixext 4
}

TEST(Msgpack, NanSurvivesBothWays) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto back = ParseMsgpack(ToMsgpack({{"x", nan}}));
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(std::isnan((*back)["x"].get<double>()));
  EXPECT_TRUE(std::isnan(json::from_msgpack(ToMsgpack(nan)).get<double>()));
  std::vector<uint8_t> f32 = {0xca, 0x7f, 0xc0, 0x00, 0x00};  // float32 NaN
  auto f = ParseMsgpack(std::string(f32.begin(), f32.end()));
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(std::isnan(f->get<double>()));
}

TEST(Msgpack, BigBinariesAndNestingRoundTrip) {
  json body = {{"model", "m"}, {"step", 7}, {"tensors", json::array()}};
  for (int i = 0; i < 3; ++i) {
    body["tensors"].push_back({{"name", "w" + std::to_string(i)},
                               {"shape", {1024, 2048}},
                               {"data", json::binary(Pattern(size_t{8} << 20, static_cast<uint8_t>(i)))}});
  }
  body["meta"] = {{"deep", {{"er", {{"est", {1, {2, {3, {json::binary(Pattern(70000, 9))}}}}}}}}}};
  const Request req{"save_checkpoint", "id-1", "tok", body};
  const std::string wire = EncodeRequest(req);
  EXPECT_GT(wire.size(), size_t{24} << 20);
  auto back = DecodeRequest(wire);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->type, "save_checkpoint");
  EXPECT_EQ(back->auth, "tok");
  EXPECT_EQ(back->body, body);
  EXPECT_EQ(json::from_msgpack(wire)["body"], body);

  Reply rep{"id-1", Status::Ok(), body};
  auto rback = DecodeReply(EncodeReply(rep));
  ASSERT_TRUE(rback.ok());
  EXPECT_EQ(rback->body, body);
}

TEST(Msgpack, EnvelopeBytesEqualTheJsonEnvelope) {
  // The envelope is written around the body without building a json; the
  // bytes must equal those of the json envelope the old code encoded.
  const json body = {{"x", {1, 2, json::binary(Pattern(300, 1))}}, {"y", "z"}};
  for (const std::string& auth : {std::string(), std::string("secret")}) {
    json env = {{"v", kProtocolVersion}, {"type", "t"}, {"id", "i"}, {"body", body}};
    if (!auth.empty()) env["auth"] = auth;
    EXPECT_EQ(EncodeRequest({"t", "i", auth, body}), ToMsgpack(env));
    EXPECT_EQ(EncodeRequest("t", "i", auth, body), ToMsgpack(env));
  }
  json ok = {{"v", kProtocolVersion}, {"id", "r"}, {"ok", true}, {"body", body}};
  EXPECT_EQ(EncodeReply({"r", Status::Ok(), body}), ToMsgpack(ok));
  json err = {{"v", kProtocolVersion}, {"id", "r"}, {"ok", false},
              {"error", {{"code", "not_found"}, {"message", "no model m"}}}};
  EXPECT_EQ(EncodeReply({"r", Status::NotFound("no model m"), {}}), ToMsgpack(err));
}

TEST(Msgpack, DeepJsonEncodesWithoutRecursing) {
  // A json built in memory may be deeper than any message may be: encoding
  // must not recurse, and the result must then be refused as too deep.
  const int levels = 100000;
  json deep = json::array();
  json* inner = &deep;
  for (int i = 1; i < levels; ++i) inner = &inner->emplace_back(json::array());
  inner->push_back(1);
  const std::string bytes = ToMsgpack(deep);
  ASSERT_EQ(bytes.size(), static_cast<size_t>(levels) + 1);
  EXPECT_EQ(bytes.front(), '\x91');
  EXPECT_EQ(bytes.back(), '\x01');
  auto r = ParseMsgpack(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nesting too deep"), std::string::npos);
}

TEST(Msgpack, DepthLimitIsExact) {
  auto nested = [](int levels) {
    std::string s(static_cast<size_t>(levels), '\x91');
    s.push_back('\x01');
    return s;
  };
  // The top value counts as a level: kMaxMessageDepth - 1 containers fit.
  EXPECT_TRUE(ParseMsgpack(nested(kMaxMessageDepth - 1)).ok());
  EXPECT_TRUE(ValidateMsgpack(nested(kMaxMessageDepth - 1)).ok());
  EXPECT_FALSE(ParseMsgpack(nested(kMaxMessageDepth)).ok());
  EXPECT_FALSE(ValidateMsgpack(nested(kMaxMessageDepth)).ok());
}

TEST(Msgpack, RejectsMalformedInput) {
  struct Case {
    std::string bytes;
    std::string why;
  };
  using namespace std::string_literals;
  const std::vector<Case> cases = {
      {""s, "truncated"},
      {"\xc1"s, "unknown type byte"},
      {"\x92\x01\xc1"s, "unknown type byte"},
      {"\xc4"s, "truncated length"},
      {"\xc6\x00\x00"s, "truncated length"},
      {"\xc6\x00\x10\x00\x00"s + std::string(100, 'x'), "truncated value"},  // bin32 of 1 MiB, 100 bytes
      {"\xc6\xff\xff\xff\xff"s, "truncated value"},                          // bin32 of 4 GiB
      {"\xc7\x03\x01\x00\x00"s, "truncated value"},                          // ext8 missing a byte
      {"\xd8\x01"s + std::string(15, 'x'), "truncated value"},               // fixext16 short
      {"\xcb\x00\x00"s, "truncated value"},                                  // float64 short
      {"\xd9\x05\x61"s, "truncated value"},                                  // str8 short
      {"\xdf\xff\xff\xff\xff"s, "container length exceeds message"},         // map32 of 4G pairs
      {"\xdc\x00\x04\x01\x02\x03"s, "container length exceeds message"},     // array16 of 4, 3 bytes
      {"\x92\xc4\x00"s, "truncated"},                                           // array of 2, 1 present
      {"\x81\xa1k"s, "truncated"},                                           // map with a key only
      {"\x81\x01\x02"s, "map key must be a string"},
      {"\x81\xc4\x01k\x02"s, "map key must be a string"},  // bin key
      {"\x82\xa1k\x01\x92\x01\x02"s, "map key must be a string"},
      {"\x01\x02"s, "trailing bytes"},
      {"\x90\x90"s, "trailing bytes"},
  };
  for (const auto& c : cases) {
    auto r = ParseMsgpack(c.bytes);
    ASSERT_FALSE(r.ok()) << "accepted " << json(json::binary(std::vector<uint8_t>(c.bytes.begin(), c.bytes.end())));
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.why), std::string::npos) << r.status().message();
  }
  // Standard MessagePack allows any key; only json cannot hold it.
  EXPECT_TRUE(ValidateMsgpack("\x81\x01\x02").ok());
}

TEST(Msgpack, EveryPrefixOfARichMessageIsRefused) {
  json body = {{"t", {{"name", "w"}, {"data", json::binary(Pattern(300, 1))}, {"x", json::binary(Pattern(4, 2), 9)}}},
               {"n", {-1, -200, 70000, 1ull << 40, 0.5, 0.1, Text(40), Text(300), nullptr, true}}};
  const std::string good = EncodeRequest({"save_checkpoint", "i", "", body});
  ASSERT_TRUE(DecodeRequest(good).ok());
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(ParseMsgpack(std::string_view(good).substr(0, n)).ok()) << n;
  }
}

TEST(Msgpack, AgreesWithNlohmannOnMutatedMessages) {
  // Differential check: for random corruptions of a message holding every
  // type, our parser accepts exactly what "validate, then nlohmann" accepted
  // (the old path), and builds the same value.
  json body = {{"a", {1, -2, 300, -40000, 1ull << 33, 0.5, 1e100, "str", Text(40), nullptr, false, true}},
               {"b", json::binary(Pattern(20, 1))},
               {"c", json::binary(Pattern(8, 2), 3)},
               {"d", {{"e", json::object()}, {"f", json::array()}}}};
  const std::string good = ToMsgpack(body);
  std::mt19937 rng(5);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s = good;
    for (int k = 0; k < 1 + static_cast<int>(rng() % 3); ++k) s[rng() % s.size()] = static_cast<char>(rng());
    auto ours = ParseMsgpack(s);
    bool old_ok = ValidateMsgpack(s).ok();
    json theirs;
    if (old_ok) {
      try {
        theirs = json::from_msgpack(s);
      } catch (const json::exception&) {
        old_ok = false;
      }
    }
    ASSERT_EQ(ours.ok(), old_ok) << i << ": " << (ours.ok() ? "" : ours.status().message());
    if (ours.ok()) {
      ++accepted;
      // Bytes, not ==: a mutated float may be NaN.
      const std::vector<uint8_t> want = json::to_msgpack(theirs);
      ASSERT_EQ(ToMsgpack(*ours), std::string(want.begin(), want.end())) << i;
    }
  }
  EXPECT_GT(accepted, 1000);  // the check saw plenty of accepted values too
}

}  // namespace
}  // namespace gantry
