// Aliases, tags, refs, lineage, deletion and name validation.
#include <gtest/gtest.h>

#include "common/fs.h"
#include "storage/collector.h"
#include "storage/registry.h"
#include "storage/storage_json.h"
#include "tests/storage/test_support.h"

namespace gantry::storage {
namespace {

using testing::ByteTensor;
using testing::Pattern;
using testing::SaveBody;
using testing::SaveJson;

class RegistryLabelsTest : public ::testing::Test {
 protected:
  RegistryLabelsTest() : reg_(std::move(Registry::Open(dir_.path(), clock_)).value()) {}
  // Saves `n` versions of `model` with loss 1/step.
  void SaveVersions(const std::string& model, int n) {
    for (int i = 1; i <= n; ++i) {
      auto r = SaveJson(reg_, SaveBody(model, i, {ByteTensor("w", Pattern(100000, i))}, {{"loss", 1.0 / i}}));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
  }
  testing::TempDir dir_;
  ManualClock clock_;
  Registry reg_;
};

TEST_F(RegistryLabelsTest, RefsResolveVersionsAliasesAndLatest) {
  SaveVersions("m", 3);
  EXPECT_EQ(reg_.Resolve("m", "latest").value(), 3);
  EXPECT_EQ(reg_.Resolve("m", "").value(), 3);
  EXPECT_EQ(reg_.Resolve("m", "v2").value(), 2);
  EXPECT_EQ(reg_.Resolve("m", "2").value(), 2);
  auto set = reg_.SetAlias("m", "production", "v2");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_FALSE(set->previous.has_value());
  EXPECT_EQ(set->version, 2);
  EXPECT_EQ(SetAliasJson(*set), json({{"model", "m"}, {"alias", "production"}, {"version", 2}, {"previous", nullptr}}));
  EXPECT_EQ(reg_.Resolve("m", "production").value(), 2);
  // Moving an alias reports where it was (a rollback is the same command).
  set = reg_.SetAlias("m", "production", "latest");
  ASSERT_TRUE(set.ok());
  ASSERT_TRUE(set->previous.has_value());
  EXPECT_EQ(*set->previous, 2);
  EXPECT_EQ(SetAliasJson(*set)["previous"], 2);
  EXPECT_EQ(reg_.Resolve("m", "production").value(), 3);
  auto missing = reg_.Resolve("m", "champion");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("aliases: production=v3"), std::string::npos);
  EXPECT_EQ(reg_.Resolve("m", "v9").status().code(), StatusCode::kNotFound);
  // Aliases that would read as refs are refused.
  for (const char* bad : {"latest", "v7", "12"}) {
    auto r = reg_.SetAlias("m", bad, "v1");
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  auto removed = reg_.RemoveAlias("m", "production");
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->version, 3);
  EXPECT_EQ(RemoveAliasJson(*removed), json({{"model", "m"}, {"alias", "production"}, {"version", 3}}));
  EXPECT_EQ(reg_.RemoveAlias("m", "production").status().code(), StatusCode::kNotFound);
}

TEST_F(RegistryLabelsTest, ShowAndListCarryLabels) {
  SaveVersions("m", 2);
  ASSERT_TRUE(reg_.SetAlias("m", "champion", "v1").ok());
  auto tagged = reg_.Tag("m", "v1", "baseline", true);
  ASSERT_TRUE(tagged.ok());
  EXPECT_EQ(tagged->version, 1);
  EXPECT_TRUE(tagged->protect);
  EXPECT_EQ(TagJson(*tagged), json({{"model", "m"}, {"version", 1}, {"tag", "baseline"}, {"protect", true}}));
  ASSERT_TRUE(reg_.Tag("m", "v2", "nightly", false).ok());
  auto show = reg_.Show("m", "champion");
  ASSERT_TRUE(show.ok()) << show.status().ToString();
  EXPECT_EQ(show->detail.manifest.version, 1);
  EXPECT_EQ(show->aliases, std::vector<std::string>{"champion"});
  ASSERT_EQ(show->tags.size(), 1u);
  EXPECT_EQ(show->tags[0].tag, "baseline");
  EXPECT_TRUE(show->is_protected);
  EXPECT_GT(show->bytes_written, 100000u);
  const json wire = ToJson(*show);
  EXPECT_EQ(wire["version"], 1);
  EXPECT_EQ(wire["path"], dir_.path() + "/checkpoints/m/v1");
  EXPECT_EQ(wire["aliases"], json::array({"champion"}));
  EXPECT_EQ(wire["tags"][0]["tag"], "baseline");
  EXPECT_EQ(wire["protected"], true);
  EXPECT_EQ(wire["bytes_written"], show->bytes_written);
  auto list = reg_.ListVersions("m");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->versions[1].tags.size(), 1u);
  EXPECT_EQ(list->versions[1].tags[0].tag, "nightly");
  EXPECT_FALSE(list->versions[1].tags[0].protect);
  EXPECT_EQ(list->versions[0].aliases, std::vector<std::string>{"champion"});
  EXPECT_EQ(ToJson(*list)["versions"][1]["tags"][0], json({{"tag", "nightly"}, {"protect", false}}));
  auto untagged = reg_.Untag("m", "v2", "nightly");
  ASSERT_TRUE(untagged.ok());
  EXPECT_EQ(UntagJson(*untagged), json({{"model", "m"}, {"version", 2}, {"tag", "nightly"}}));
  EXPECT_EQ(reg_.Untag("m", "v2", "nightly").status().code(), StatusCode::kNotFound);
}

TEST_F(RegistryLabelsTest, DeleteRefusesProtectedVersionsWithoutForce) {
  SaveVersions("m", 3);
  ASSERT_TRUE(reg_.SetAlias("m", "production", "v1").ok());
  ASSERT_TRUE(reg_.Tag("m", "v2", "keep", true).ok());
  for (const char* ref : {"v1", "v2"}) {
    auto r = reg_.Delete("m", ref, false);
    ASSERT_FALSE(r.ok()) << ref;
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(r.status().message().find("--force"), std::string::npos);
  }
  auto del = reg_.Delete("m", "v3", false);
  ASSERT_TRUE(del.ok()) << del.status().ToString();
  EXPECT_EQ(del->version, 3);
  EXPECT_GE(del->bytes_freed, 100000u);
  EXPECT_EQ(ToJson(*del)["bytes_freed"], del->bytes_freed);
  EXPECT_FALSE(PathExists(dir_.path() + "/checkpoints/m/v3"));
  ASSERT_TRUE(reg_.Delete("m", "production", true).ok());
  EXPECT_EQ(reg_.Resolve("m", "production").status().code(), StatusCode::kNotFound);
  // Numbers are never reused.
  auto saved = SaveJson(reg_, SaveBody("m", 9, {ByteTensor("w", Pattern(10, 1))}));
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->version, 4);
}

TEST_F(RegistryLabelsTest, LineageFollowsParentsAcrossModels) {
  SaveVersions("base", 1);
  json ft = SaveBody("finetune", 100, {ByteTensor("w", Pattern(100000, 1))}, {{"loss", 0.1}});
  ft["parent_model"] = "base";
  ft["parent_version"] = 1;
  ft["data_fingerprint"] = "sha256:abc";
  ft["job_id"] = "j-20250101-000000-beef";
  ft["attempt"] = 2;
  auto v1 = SaveJson(reg_, ft);
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(v1->tensors_shared, 1);  // dedup works across models
  ft["parent_model"] = nullptr;           // resume within the model
  ft["step"] = 200;
  auto v2 = SaveJson(reg_, ft);
  ASSERT_TRUE(v2.ok());
  auto lineage = reg_.Lineage("finetune", "latest");
  ASSERT_TRUE(lineage.ok()) << lineage.status().ToString();
  EXPECT_EQ(lineage->version.version, 2);
  EXPECT_EQ(lineage->version.prov.job_id, "j-20250101-000000-beef");
  EXPECT_EQ(lineage->version.prov.parent_model, "finetune");
  ASSERT_EQ(lineage->ancestors.size(), 2u);
  EXPECT_EQ(lineage->ancestors[1].model, "base");
  ASSERT_TRUE(lineage->ancestors[1].row.has_value());
  EXPECT_EQ(lineage->ancestors[1].row->prov.step, 1);
  const json l = ToJson(*lineage);
  EXPECT_EQ(l["model"], "finetune");
  EXPECT_FALSE(l.contains("exists"));
  EXPECT_EQ(l["version"], 2);
  EXPECT_EQ(l["job_id"], "j-20250101-000000-beef");
  EXPECT_EQ(l["attempt"], 2);
  EXPECT_EQ(l["step"], 200);
  EXPECT_EQ(l["data_fingerprint"], "sha256:abc");
  EXPECT_EQ(l["parent"], json({{"model", "finetune"}, {"version", 1}}));
  ASSERT_EQ(l["ancestors"].size(), 2u);
  EXPECT_EQ(l["ancestors"][0]["version"], 1);
  EXPECT_EQ(l["ancestors"][1]["model"], "base");
  EXPECT_EQ(l["ancestors"][1]["exists"], true);
  EXPECT_DOUBLE_EQ(l["ancestors"][1]["metrics"]["loss"].get<double>(), 1.0);
  EXPECT_EQ(l["ancestors"][1]["parent"], nullptr);
  // A deleted parent still shows, as not existing.
  ASSERT_TRUE(reg_.Delete("base", "v1", false).ok());
  lineage = reg_.Lineage("finetune", "v1");
  ASSERT_TRUE(lineage.ok()) << lineage.status().ToString();
  ASSERT_EQ(lineage->ancestors.size(), 1u);
  EXPECT_FALSE(lineage->ancestors[0].row.has_value());
  EXPECT_EQ(ToJson(*lineage)["ancestors"][0], json({{"model", "base"}, {"version", 1}, {"exists", false}}));
}

// Path traversal through any name a client controls is refused with a
// message naming the field.
TEST_F(RegistryLabelsTest, PathTraversalInNamesIsRefused) {
  SaveVersions("m", 1);
  const std::vector<std::string> bad = {"../etc", "..", "a/b", "/abs", ".hidden", "x\\y", std::string(200, 'a'),
                                        "with space", std::string("nul\0byte", 8)};
  for (const auto& name : bad) {
    SCOPED_TRACE(name);
    auto expect_refused = [&](const Status& s, const std::string& field) {
      EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
      EXPECT_NE(s.message().find(field), std::string::npos) << s.message();
    };
    expect_refused(SaveJson(reg_, SaveBody(name, 1, json::array())).status(), "model");
    expect_refused(reg_.ListVersions(name).status(), "model");
    expect_refused(reg_.Resolve(name, "latest").status(), "model");
    expect_refused(reg_.Resolve("m", name).status(), "version ref");
    expect_refused(reg_.SetAlias("m", name, "v1").status(), "alias");
    expect_refused(reg_.SetAlias(name, "prod", "v1").status(), "model");
    expect_refused(reg_.Tag("m", "v1", name, false).status(), "tag");
    expect_refused(reg_.Delete(name, "v1", true).status(), "model");
    expect_refused(reg_.SetRetention(name, RetentionPolicy{}).status(), "model");
    expect_refused(reg_.CollectGarbage(name, true).status(), "model");
    json parent = SaveBody("m", 1, json::array());
    parent["parent_model"] = name;
    parent["parent_version"] = 1;
    expect_refused(SaveJson(reg_, parent).status(), "parent_model");
  }
  // Nothing escaped the data dir.
  EXPECT_FALSE(PathExists(dir_.path() + "/etc"));
  EXPECT_FALSE(PathExists(dir_.path() + "/checkpoints/a"));
}

TEST(RetentionTest, KeepsUnionOfLatestBestAndProtected) {
  std::vector<VersionRow> versions;
  const double loss[] = {0.9, 0.2, 0.5, 0.1, 0.8, 0.7, 0.6};
  for (int i = 0; i < 7; ++i) {
    VersionRow r;
    r.version = i + 1;
    r.prov.metrics = {{"val_loss", loss[i]}};
    versions.push_back(r);
  }
  versions[2].prov.metrics = json::object();  // v3 lacks the metric
  RetentionPolicy p{2, 2, "val_loss", "min"};
  // latest 2: v6, v7; best 2 by min: v4 (0.1), v2 (0.2); protected: v1.
  EXPECT_EQ(SelectExpired(versions, p, {1}), (std::vector<int64_t>{3, 5}));
  p.mode = "max";  // best by max: v1 (0.9), v5 (0.8)
  EXPECT_EQ(SelectExpired(versions, p, {}), (std::vector<int64_t>{2, 3, 4}));
  p = RetentionPolicy{1, 0, "", "min"};
  EXPECT_EQ(SelectExpired(versions, p, {}), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
}

TEST_F(RegistryLabelsTest, RetentionPolicyIsValidatedAndAppliedAtOnce) {
  SaveVersions("m", 5);
  EXPECT_EQ(reg_.SetRetention("m", RetentionPolicy{0, 0, "", "min"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(reg_.SetRetention("m", RetentionPolicy{1, 2, "", "min"}).status().message().find("needs a metric"),
            std::string::npos);
  EXPECT_EQ(reg_.SetRetention("m", RetentionPolicy{1, 1, "loss", "median"}).status().code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(reg_.SetAlias("m", "production", "v1").ok());
  auto set = reg_.SetRetention("m", RetentionPolicy{2, 0, "", "min"});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->expired, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(SetRetentionJson(*set)["expired"], json::array({2, 3}));
  EXPECT_EQ(SetRetentionJson(*set)["retention"],
            json({{"keep_latest", 2}, {"keep_best", 0}, {"metric", ""}, {"mode", "min"}}));
  auto list = reg_.ListVersions("m");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->versions.size(), 3u);
  ASSERT_TRUE(list->retention.has_value());
  EXPECT_EQ(list->retention->keep_latest, 2);
  EXPECT_EQ(ToJson(*list)["retention"]["keep_latest"], 2);
  auto got = reg_.GetRetention("m");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(GetRetentionJson(*got), json({{"model", "m"}, {"retention", ToJson(*list->retention)}}));
  // The next save applies it again.
  auto saved = SaveJson(reg_, SaveBody("m", 6, {ByteTensor("w", Pattern(100000, 6))}));
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->expired, std::vector<int64_t>{4});
  EXPECT_EQ(ToJson(*saved)["expired"], json::array({4}));
  // A policy set before the first save (as a job spec would) waits for it.
  ASSERT_TRUE(reg_.SetRetention("fresh", RetentionPolicy{1, 0, "", "min"}).ok());
  auto cleared = reg_.SetRetention("m", std::nullopt);
  ASSERT_TRUE(cleared.ok());
  EXPECT_FALSE(cleared->retention.has_value());
  EXPECT_EQ(SetRetentionJson(*cleared), json({{"model", "m"}, {"retention", nullptr}, {"expired", json::array()}}));
}

}  // namespace
}  // namespace gantry::storage
