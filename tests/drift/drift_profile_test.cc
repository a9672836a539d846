// ReferenceProfile: exact vs sketch accuracy, JSON round trip and validation,
// the detector's verdict, and calibration on synthetic data.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "drift/calibration.h"
#include "drift/detector.h"
#include "drift/ks.h"
#include "drift/profile.h"
#include "drift/profile_json.h"
#include "drift/stored_profile.h"
#include "tests/drift/drift_test_util.h"

namespace gantry::drift {
namespace {

using testing::Normal;

// rows x cols, row-major; column c ~ N(shift[c], 1), even columns rounded to
// integers (tied), odd columns continuous.
std::vector<double> Table(std::mt19937_64& rng, size_t rows, size_t cols,
                          const std::vector<double>& shift) {
  std::vector<double> t(rows * cols);
  for (size_t c = 0; c < cols; ++c) {
    const std::vector<double> v = Normal(rng, rows, shift[c]);
    for (size_t r = 0; r < rows; ++r) t[r * cols + c] = c % 2 == 0 ? std::round(3 * v[r]) : v[r];
  }
  return t;
}

TEST(DriftProfileTest, ExactProfileGivesTheRawReferenceResult) {
  std::mt19937_64 rng(7);
  const std::vector<double> a = Normal(rng, 5000, 0), b = Normal(rng, 800, 0.1);
  std::vector<double> tied_a, tied_b;
  for (double x : a) tied_a.push_back(std::round(4 * x));
  for (double x : b) tied_b.push_back(std::round(4 * x));
  auto prof = BuildProfile(MatrixView::Of(tied_a, tied_a.size(), 1));
  ASSERT_TRUE(prof.ok());
  EXPECT_TRUE(prof->features[0].exact);
  auto det = DriftDetector::Create(*prof);
  ASSERT_TRUE(det.ok());
  auto d = det->Compare(MatrixView::Of(tied_b, tied_b.size(), 1));
  ASSERT_TRUE(d.ok());
  auto raw = KsTwoSample(tied_a, tied_b);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(d->features[0].ks.statistic, raw->statistic);
  EXPECT_EQ(d->features[0].ks.p_value, raw->p_value);
}

TEST(DriftProfileTest, SketchIsBoundedAndCloseToExact) {
  std::mt19937_64 rng(11);
  const std::vector<double> ref = Normal(rng, 100000, 0);
  ProfileOptions opt;
  opt.max_points = 1024;
  auto prof = BuildProfile(MatrixView::Of(ref, ref.size(), 1), {}, {}, opt);
  ASSERT_TRUE(prof.ok());
  const FeatureProfile& f = prof->features[0];
  EXPECT_FALSE(f.exact);
  EXPECT_LE(f.values.size(), 1024u);
  EXPECT_EQ(f.count, 100000);
  auto det = DriftDetector::Create(*prof);
  ASSERT_TRUE(det.ok());
  double worst_d = 0, worst_w = 0;
  for (double shift : {0.0, 0.02, 0.1, 0.5}) {
    const std::vector<double> cur = Normal(rng, 10000, shift);
    auto d = det->Compare(MatrixView::Of(cur, cur.size(), 1));
    ASSERT_TRUE(d.ok());
    auto exact_ks = KsTwoSample(ref, cur);
    ASSERT_TRUE(exact_ks.ok());
    const double dd = std::fabs(d->features[0].ks.statistic - exact_ks->statistic);
    EXPECT_LE(dd, 1.0 / 1024 + 1.0 / 100000) << "shift " << shift;
    worst_d = std::max(worst_d, dd);
    auto er = MakeEcdf(ref);
    auto ec = MakeEcdf(cur);
    const double w = Wasserstein1(*er, *ec);
    worst_w = std::max(worst_w, std::fabs(d->features[0].wasserstein - w));
    // The mean and std are exact, so the normed distance uses the true spread.
    EXPECT_NEAR(f.std_dev, 1.0, 0.01);
  }
  EXPECT_LT(worst_w, 0.01);
  std::printf("sketch (1024 points, n=100000): max |D - D_exact| = %.3g, max |W - W_exact| = %.3g\n",
              worst_d, worst_w);
}

TEST(DriftProfileTest, JsonRoundTripAndValidation) {
  std::mt19937_64 rng(3);
  const std::vector<double> t = Table(rng, 3000, 4, {0, 0, 0, 0});
  std::vector<int64_t> labels;
  for (size_t i = 0; i < 3000; ++i) labels.push_back(static_cast<int64_t>(i % 7));
  const std::vector<std::string> names = {"a", "b", "c", "d"};
  const CategoricalColumn label{"label", labels};
  ProfileOptions opt;
  opt.max_points = 256;
  auto prof = BuildProfile(MatrixView::Of(t, 3000, 4), names, std::span(&label, 1), opt);
  ASSERT_TRUE(prof.ok());
  prof->calibration = CalibrationInfo{0.03, 100, 50, 50, 1, 0.02, 0.01, 9};
  const nlohmann::json j = EncodeProfile(*prof);
  auto back = DecodeProfile(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(EncodeProfile(*back), j);
  EXPECT_EQ(back->features[1].name, "b");
  EXPECT_FALSE(back->features[1].exact);  // continuous: sketch
  EXPECT_TRUE(back->features[0].exact);   // rounded: exact
  EXPECT_EQ(back->categorical[0].counts.at(3), 429);
  ASSERT_TRUE(back->calibration.has_value());
  EXPECT_EQ(back->calibration->share_threshold, 0.03);

  auto broken = j;
  broken["version"] = 2;
  EXPECT_FALSE(DecodeProfile(broken).ok());
  broken = j;
  broken["features"][0]["counts"].push_back(1);
  EXPECT_FALSE(DecodeProfile(broken).ok());
  broken = j;
  broken["features"][2]["values"][0] = "x";
  auto bad = DecodeProfile(broken);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("features[2].values"), std::string::npos);
  broken = j;
  broken["categorical"][0]["counts"][0][1] = -1;
  EXPECT_FALSE(DecodeProfile(broken).ok());
  EXPECT_FALSE(DecodeProfile(nlohmann::json::array()).ok());
  // Counts that do not sum to the feature's count are caught on use.
  broken = j;
  broken["features"][0]["count"] = 1;
  auto decoded = DecodeProfile(broken);
  ASSERT_TRUE(decoded.ok());
  EXPECT_FALSE(DriftDetector::Create(*decoded).ok());
}

// A checkpoint reply carries the profile and, for versions that recorded
// them, the evaluation set's predicted-class counts (int64 bytes).
TEST(DriftProfileTest, CheckpointReplyCarriesTheEvaluationPredictions) {
  std::mt19937_64 rng(4);
  const std::vector<double> t = Table(rng, 500, 2, {0, 0});
  auto prof = BuildProfile(MatrixView::Of(t, 500, 2));
  ASSERT_TRUE(prof.ok());
  const std::vector<uint8_t> bytes = ProfileToBytes(*prof);
  const std::vector<int64_t> counts = {7, 0, 93};
  std::vector<uint8_t> raw(counts.size() * sizeof(int64_t));
  std::memcpy(raw.data(), counts.data(), raw.size());
  using nlohmann::json;
  json profile_tensor = {{"name", kProfileTensorName}, {"dtype", "uint8"}, {"data", json::binary(bytes)}};
  json predictions = {{"name", kEvalPredictionsTensorName}, {"dtype", "int64"}, {"data", json::binary(raw)}};

  auto without = ProfileFromCheckpointReply({{"tensors", {profile_tensor}}}, "m@v1");
  ASSERT_TRUE(without.ok()) << without.status().ToString();
  EXPECT_FALSE(without->predictions.has_value());

  auto with = ProfileFromCheckpointReply({{"tensors", {predictions, profile_tensor}}}, "m@v2");
  ASSERT_TRUE(with.ok()) << with.status().ToString();
  ASSERT_TRUE(with->predictions.has_value());
  EXPECT_EQ(with->predictions->name, "predicted_class");
  EXPECT_EQ(with->predictions->counts, (std::map<int64_t, int64_t>{{0, 7}, {2, 93}}));

  predictions["dtype"] = "float32";
  auto wrong = ProfileFromCheckpointReply({{"tensors", {predictions, profile_tensor}}}, "m@v3");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("trainer/eval_predictions"), std::string::npos);
  raw.pop_back();
  EXPECT_FALSE(PredictionsFromBytes(raw).ok());
  // Predictions alone are no profile.
  predictions["dtype"] = "int64";
  EXPECT_EQ(ProfileFromCheckpointReply({{"tensors", {predictions}}}, "m@v4").status().code(), StatusCode::kNotFound);
}

TEST(DriftProfileTest, VerdictFlagsShiftedFeaturesMostDriftedFirst) {
  std::mt19937_64 rng(5);
  const size_t cols = 20;
  const std::vector<double> ref = Table(rng, 20000, cols, std::vector<double>(cols, 0.0));
  std::vector<double> shift(cols, 0.0);
  shift[3] = 0.5;   // strong
  shift[8] = 0.2;   // weaker
  const std::vector<double> cur = Table(rng, 2000, cols, shift);
  std::vector<int64_t> ref_labels, cur_labels;
  for (int i = 0; i < 20000; ++i) ref_labels.push_back(i % 4);
  for (int i = 0; i < 2000; ++i) cur_labels.push_back(i % 5 == 0 ? 0 : i % 4);  // more 0s
  const CategoricalColumn rl{"label", ref_labels}, cl{"label", cur_labels};
  auto prof = BuildProfile(MatrixView::Of(ref, 20000, cols), {}, std::span(&rl, 1));
  ASSERT_TRUE(prof.ok());
  auto det = DriftDetector::Create(*prof);
  ASSERT_TRUE(det.ok());
  auto d = det->Compare(MatrixView::Of(cur, 2000, cols), std::span(&cl, 1));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->tested, cols + 1);
  ASSERT_GE(d->features.size(), 2u);
  EXPECT_EQ(d->features[0].index, 3u);
  EXPECT_EQ(d->features[1].index, 8u);
  EXPECT_TRUE(d->features[0].drifted);
  EXPECT_TRUE(d->features[1].drifted);
  EXPECT_GT(d->features[0].psi, d->features[1].psi);
  EXPECT_GT(d->features[0].js_distance, 0.0);
  ASSERT_TRUE(d->features[0].wasserstein_normed.has_value());
  EXPECT_NEAR(*d->features[0].wasserstein_normed, 0.5, 0.15);
  EXPECT_TRUE(d->categorical[0].drifted);
  EXPECT_EQ(d->drifted, 3u);
  EXPECT_NEAR(d->share, 3.0 / 21, 1e-12);
  EXPECT_TRUE(d->dataset_drift);  // 0.14 >= 0.05
  for (size_t i = 2; i < d->features.size(); ++i) EXPECT_FALSE(d->features[i].drifted) << i;
  const nlohmann::json j = EncodeDrift(*d);
  EXPECT_EQ(j["features"][0]["index"], 3);
  EXPECT_EQ(j["dataset_drift"], true);
  // Wrong shape is refused with the counts.
  auto wrong = det->Compare(MatrixView::Of(cur, 4000, cols / 2));
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("10 numeric features"), std::string::npos);
}

TEST(DriftProfileTest, CalibrationKeepsNoDriftWindowsQuiet) {
  std::mt19937_64 rng(9);
  const size_t cols = 30, rows = 20000;
  const std::vector<double> ref = Table(rng, rows, cols, std::vector<double>(cols, 0.0));
  auto prof = BuildProfile(MatrixView::Of(ref, rows, cols));
  ASSERT_TRUE(prof.ok());
  auto det = DriftDetector::Create(*prof);
  ASSERT_TRUE(det.ok());
  CalibrationOptions opt;
  opt.window_rows = 500;
  opt.windows = 60;
  opt.check_windows = 60;
  opt.seed = 42;
  auto cal = CalibrateShareThreshold(*det, MatrixView::Of(ref, rows, cols), opt);
  ASSERT_TRUE(cal.ok()) << cal.status().ToString();
  EXPECT_GE(cal->share_threshold, opt.min_share);
  EXPECT_LE(cal->false_alarm_rate, 0.05);
  EXPECT_EQ(cal->check_windows, 60);
  // Seeded: the same inputs give the same calibration.
  auto again = CalibrateShareThreshold(*det, MatrixView::Of(ref, rows, cols), opt);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->share_threshold, cal->share_threshold);
  EXPECT_EQ(again->check_alarms, cal->check_alarms);
  // The calibrated threshold is what a detector with it applies.
  det->set_calibration(*cal);
  std::vector<double> shift(cols, 0.0);
  for (size_t c = 0; c < cols; c += 3) shift[c] = 0.3;
  const std::vector<double> cur = Table(rng, 500, cols, shift);
  auto d = det->Compare(MatrixView::Of(cur, 500, cols));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->share_threshold, cal->share_threshold);
  EXPECT_TRUE(d->dataset_drift);
  // Without the floor the threshold sits just above the largest null share
  // (target 1% of 60 windows: none may alarm).
  opt.min_share = 0;
  auto bare = CalibrateShareThreshold(*det, MatrixView::Of(ref, rows, cols), opt);
  ASSERT_TRUE(bare.ok());
  EXPECT_GT(bare->share_threshold, bare->max_null_share);
  EXPECT_LT(bare->share_threshold, bare->max_null_share + 1.0 / cols);
  opt.window_rows = static_cast<int64_t>(rows) + 1;
  EXPECT_FALSE(CalibrateShareThreshold(*det, MatrixView::Of(ref, rows, cols), opt).ok());
  std::printf("calibration: threshold %.4f, max null share %.4f, false alarms %d/%d\n",
              cal->share_threshold, cal->max_null_share, cal->check_alarms, cal->check_windows);
}

}  // namespace
}  // namespace gantry::drift
