// Contracts between processes that live once in common/: the ingest message
// builders, request field readers, a statement's bind errors and the frame
// limit a service publishes.
#include <gtest/gtest.h>

#include <cmath>

#include "common/data_dir.h"
#include "common/exit_codes.h"
#include "common/fields.h"
#include "common/ingest_wire.h"
#include "common/sqlite.h"
#include "tests/support/test_support.h"

namespace gantry {
namespace {

TEST(IngestWire, MetricsFrameHasTheEnvelopeAndBody) {
  MetricsMessage m;
  m.job_id = "j-1";
  m.attempt = 2;
  m.rank = 1;
  m.world_size = 4;
  m.step = 30;
  m.total_steps = 100;
  m.epoch = 3;
  m.time = 1700000000.5;
  m.values = {{"loss", 0.5}};
  auto j = ParseMsgpack(EncodeMetricsMessage(m));
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["v"], kProtocolVersion);
  EXPECT_EQ((*j)["type"], "metrics");
  EXPECT_EQ((*j)["id"], "");
  const json& b = (*j)["body"];
  EXPECT_EQ(b["job_id"], "j-1");
  EXPECT_EQ(b["attempt"], 2);
  EXPECT_EQ(b["rank"], 1);
  EXPECT_EQ(b["world_size"], 4);
  EXPECT_EQ(b["step"], 30);
  EXPECT_EQ(b["total_steps"], 100);
  EXPECT_EQ(b["epoch"], 3);
  EXPECT_DOUBLE_EQ(b["time"].get<double>(), 1700000000.5);
  EXPECT_DOUBLE_EQ(b["values"]["loss"].get<double>(), 0.5);
}

TEST(IngestWire, JobStateFrame) {
  auto j = ParseMsgpack(EncodeJobStateMessage({"j-2", "RUNNING", 1, "running attempt 1", 12.0, "", nullptr}));
  ASSERT_TRUE(j.ok());
  EXPECT_EQ((*j)["type"], "job_state");
  EXPECT_EQ((*j)["body"], (json{{"job_id", "j-2"}, {"state", "RUNNING"}, {"attempt", 1},
                                {"reason", "running attempt 1"}, {"time", 12.0}}));
  // The spec's name and alert rules ride along when the job has them.
  json rules = json::array({{{"name", "nan"}, {"kind", "nonfinite"}}});
  auto k = ParseMsgpack(EncodeJobStateMessage({"j-3", "QUEUED", 0, "", 1.0, "mnist", rules}));
  ASSERT_TRUE(k.ok());
  EXPECT_EQ((*k)["body"]["name"], "mnist");
  EXPECT_EQ((*k)["body"]["alerts"], rules);
}

TEST(Fields, GetBoolAndModelRef) {
  EXPECT_TRUE(GetBool(json{{"f", true}}, "f", false).value());
  EXPECT_FALSE(GetBool(json::object(), "f", false).value());
  EXPECT_TRUE(GetBool(json{{"f", nullptr}}, "f", true).value());
  auto bad = In(GetBool(json{{"f", 1}}, "f", false), "gc");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "gc: field 'f' must be true or false");

  auto mr = GetModelRef(json{{"model", "m"}}, "show_version");
  ASSERT_TRUE(mr.ok());
  EXPECT_EQ(mr->second, "latest");
  EXPECT_EQ(GetModelRef(json{{"model", "m"}, {"ref", "v3"}}, "x")->second, "v3");
  EXPECT_EQ(GetModelRef(json{{"model", "m"}, {"ref", 3}}, "x")->second, "v3") << "an integer ref is version N";
  EXPECT_EQ(GetModelRef(json{{"model", "m"}, {"ref", 0}}, "x").status().code(), StatusCode::kInvalidArgument);
  auto missing = GetModelRef(json::object(), "lineage");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.status().message().rfind("lineage: ", 0), 0u) << missing.status().message();
}

TEST(ExitCodes, PreemptedIsTempfail) { EXPECT_EQ(kExitPreempted, 75); }

TEST(SqliteBind, AFailedBindFailsTheStatementInsteadOfRunningIt) {
  testing::TempDir tmp;
  auto db = sql::Db::Open(tmp.path() + "/t.db");
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db->Exec("CREATE TABLE t (a INTEGER, b INTEGER)").ok());
  auto q = db->Prepare("INSERT INTO t VALUES (?, ?)");
  ASSERT_TRUE(q.ok());
  q->Bind(1, 1).Bind(3, 2);  // there is no parameter 3: SQLITE_RANGE
  Status s = q->Run();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("binding parameter 3"), std::string::npos) << s.ToString();
  auto count = db->QueryStrings("SELECT COUNT(*) FROM t");
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(count->at(0), "0") << "the row was not inserted with a missing value";
  ASSERT_TRUE(q->Reset().ok());
  q->Bind(1, 1).Bind(2, 2);
  EXPECT_TRUE(q->Run().ok()) << "Reset clears the bind error";
}

TEST(ServiceInfoFile, CarriesTheFrameLimit) {
  testing::TempDir tmp;
  DataDir dir(tmp.path());
  ASSERT_TRUE(dir.Ensure().ok());
  ServiceInfo info{"storage", ::getpid(), {{"api", "tcp://127.0.0.1:1"}}};
  info.max_message_bytes = kDefaultStorageMaxMessageBytes;
  ASSERT_TRUE(dir.WriteServiceInfo(info).ok());
  auto back = dir.ReadServiceInfo("storage");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->max_message_bytes, int64_t{512} << 20);
}

}  // namespace
}  // namespace gantry
