// Router, query decoding, token file and SSE formatting, without sockets.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/http/router.h"
#include "common/http/sse.h"
#include "common/http/static_files.h"
#include "common/http/token.h"
#include "tests/support/test_support.h"

namespace gantry::http {
namespace {

HttpRequest Req(std::string method, std::string target, std::string auth = "") {
  HttpRequest r;
  r.method = std::move(method);
  r.target = std::move(target);
  if (!auth.empty()) r.headers["authorization"] = auth;
  return r;
}

TEST(PercentDecodeTest, DecodesAndRejectsBadEscapes) {
  EXPECT_EQ(*PercentDecode("a%20b%2Fc", false), "a b/c");
  EXPECT_EQ(*PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(*PercentDecode("a+b", true), "a b");
  EXPECT_EQ(*PercentDecode("%e2%82%ac", false), "\xe2\x82\xac");
  EXPECT_FALSE(PercentDecode("%", false).ok());
  EXPECT_FALSE(PercentDecode("%2", false).ok());
  EXPECT_FALSE(PercentDecode("%zz", false).ok());
  EXPECT_FALSE(PercentDecode("a%00b", false).ok());
}

TEST(ParseQueryTest, SplitsDecodesAndKeepsOrder) {
  auto q = ParseQuery("after=3&name=x%3Dy+z&flag&&a=1&a=2");
  ASSERT_TRUE(q.ok());
  std::vector<std::pair<std::string, std::string>> want = {
      {"after", "3"}, {"name", "x=y z"}, {"flag", ""}, {"a", "1"}, {"a", "2"}};
  EXPECT_EQ(*q, want);
  EXPECT_FALSE(ParseQuery("a=%G1").ok());
}

TEST(RouterTest, MatchesLiteralsBeforeCaptures) {
  Router router;
  ASSERT_TRUE(router.Add("GET", "/api/jobs/{id}", [](const HttpRequest& r) {
    return HttpResponse::Text(200, "job " + r.params.at("id"));
  }).ok());
  ASSERT_TRUE(router.Add("GET", "/api/jobs/summary", [](const HttpRequest&) {
    return HttpResponse::Text(200, "summary");
  }).ok());
  EXPECT_EQ(router.Dispatch(Req("GET", "/api/jobs/summary"), "").body, "summary");
  EXPECT_EQ(router.Dispatch(Req("GET", "/api/jobs/j-7"), "").body, "job j-7");
  EXPECT_EQ(router.Dispatch(Req("GET", "/api/jobs/"), "").status, 404);
  EXPECT_EQ(router.Dispatch(Req("GET", "/api/jobs/a/b"), "").status, 404);
  EXPECT_EQ(router.Dispatch(Req("GET", "api/jobs/a"), "").status, 400);
  EXPECT_EQ(router.Dispatch(Req("PUT", "/api/jobs/a"), "").status, 405);
}

TEST(RouterTest, RefusesBadPatternsAndDuplicates) {
  Router router;
  auto h = [](const HttpRequest&) { return HttpResponse::Text(200, ""); };
  EXPECT_FALSE(router.Add("GET", "no-slash", h).ok());
  EXPECT_FALSE(router.Add("GET", "/a/{x", h).ok());
  EXPECT_FALSE(router.Add("GET", "/a/{}", h).ok());
  ASSERT_TRUE(router.Add("GET", "/a/{x}", h).ok());
  EXPECT_EQ(router.Add("GET", "/a/{x}", h).code(), StatusCode::kAlreadyExists);
}

TEST(RouterTest, TokenOnMutatingAndMarkedRoutes) {
  Router router;
  auto h = [](const HttpRequest&) { return HttpResponse::Text(200, "done"); };
  ASSERT_TRUE(router.Add("DELETE", "/api/alerts/{id}", h).ok());
  ASSERT_TRUE(router.Add("GET", "/api/secret", h, RouteOptions{.require_token = true}).ok());
  ASSERT_TRUE(router.Add("GET", "/api/open", h).ok());
  const std::string token = "tok";
  EXPECT_EQ(router.Dispatch(Req("DELETE", "/api/alerts/1"), token).status, 401);
  EXPECT_EQ(router.Dispatch(Req("DELETE", "/api/alerts/1", "Bearer to"), token).status, 403);
  EXPECT_EQ(router.Dispatch(Req("DELETE", "/api/alerts/1", "Bearer tokk"), token).status, 403);
  EXPECT_EQ(router.Dispatch(Req("DELETE", "/api/alerts/1", "bearer tok"), token).status, 401);
  EXPECT_EQ(router.Dispatch(Req("DELETE", "/api/alerts/1", "Bearer tok"), token).status, 200);
  EXPECT_EQ(router.Dispatch(Req("GET", "/api/secret"), token).status, 401);
  EXPECT_EQ(router.Dispatch(Req("GET", "/api/secret", "Bearer tok"), token).status, 200);
  EXPECT_EQ(router.Dispatch(Req("GET", "/api/open"), token).status, 200);
  // No server token: protected routes cannot be reached at all.
  EXPECT_EQ(router.Dispatch(Req("DELETE", "/api/alerts/1", "Bearer "), "").status, 401);
  EXPECT_EQ(router.Dispatch(Req("DELETE", "/api/alerts/1", "Bearer x"), "").status, 403);
}

TEST(RouterTest, DotSegmentsAndEncodedSlashesAreRefused) {
  Router router;
  ASSERT_TRUE(router.Add("GET", "/static/{name}", [](const HttpRequest& r) {
    return HttpResponse::Text(200, r.params.at("name"));
  }).ok());
  EXPECT_EQ(router.Dispatch(Req("GET", "/static/a.js"), "").body, "a.js");
  for (const char* t : {"/static/..", "/static/%2E%2E", "/static/.", "/static/a%2Fb", "/static/%00"}) {
    EXPECT_EQ(router.Dispatch(Req("GET", t), "").status, 400) << t;
  }
}

TEST(StaticFilesTest, ContentTypesAndBadNames) {
  EXPECT_EQ(ContentTypeForPath("/x/index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(ContentTypeForPath("dygraph.min.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(ContentTypeForPath("a.css"), "text/css; charset=utf-8");
  EXPECT_EQ(ContentTypeForPath("a.map"), "application/json");
  EXPECT_EQ(ContentTypeForPath("a.bin"), "application/octet-stream");
  StaticFiles files;
  EXPECT_FALSE(files.AddFiles("/static", "/tmp", {"../etc/passwd"}).ok());
  EXPECT_FALSE(files.AddFiles("/static", "/tmp", {".."}).ok());
  EXPECT_FALSE(files.AddFile("/static/../x", "/etc/passwd").ok());
  EXPECT_FALSE(files.AddFile("relative", "/etc/passwd").ok());
}

TEST(TokenTest, CreatedOnceWithMode0600) {
  gantry::testing::TempDir dir;
  std::string path = dir.path() + "/" + kTokenFileName;
  auto first = LoadOrCreateToken(path);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->size(), 64u);
  EXPECT_EQ(first->find_first_not_of("0123456789abcdef"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = LoadOrCreateToken(path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first);
  auto other = GenerateToken();
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, *first);
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  EXPECT_EQ(LoadOrCreateToken(path).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(WriteFileAtomic(path, "\n", 0600).ok());
  EXPECT_EQ(LoadOrCreateToken(path).status().code(), StatusCode::kFailedPrecondition);
}

TEST(TokenTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("ab", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
}

TEST(SseTest, FormatsEventsAndBoundsEachQueue) {
  EXPECT_EQ(SseBroadcaster::Format("point", "{}"), "event: point\ndata: {}\n\n");
  EXPECT_EQ(SseBroadcaster::Format("", "a\r\nb"), "data: a\ndata: b\n\n");
  EXPECT_EQ(SseBroadcaster::Format("x\ny", ""), "event: xy\ndata: \n\n");

  SseBroadcaster b(SseOptions{.max_queued_bytes = 100, .max_clients = 2});
  int wakes = 0;
  auto reader = b.Subscribe([&] { ++wakes; });
  auto stuck = b.Subscribe(nullptr);
  ASSERT_TRUE(reader && stuck);
  EXPECT_EQ(b.Subscribe(nullptr), nullptr);  // max_clients
  for (int i = 0; i < 10; ++i) {
    b.Publish("e", std::string(20, 'x'));  // 35 bytes a frame
    EXPECT_FALSE(reader->TakeAll().empty());
  }
  EXPECT_EQ(wakes, 10);
  EXPECT_TRUE(stuck->dropped());
  EXPECT_FALSE(reader->dropped());
  auto s = b.stats();
  EXPECT_EQ(s.clients, 1u);
  EXPECT_EQ(s.dropped, 1u);
  EXPECT_EQ(s.published, 10u);
  EXPECT_LE(s.max_queued_bytes, 100u);
  reader->Close();
  EXPECT_EQ(b.stats().clients, 0u);
  EXPECT_NE(b.Subscribe(nullptr), nullptr);  // a closed client frees its slot
}

}  // namespace
}  // namespace gantry::http
