// Acceptance on Fashion-MNIST (issue 10): with the 60,000 training images as
// the reference, 1,000 test images made 0.8x brighter, or rotated by 10
// degrees, are each dataset drift, while of 100 seeded untouched samples of
// 1,000 test images at most one is. The dataset threshold is calibrated on
// the reference (windows of 1,000 training images).
//
// A local gzip IDX loader keeps this test free of LibTorch: data/'s reader
// returns tensors, and the monitor and its tests do not link LibTorch.
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numbers>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "drift/calibration.h"
#include "drift/detector.h"
#include "drift/profile.h"

namespace gantry::drift {
namespace {

constexpr const char* kDir = "/usr/share/datasets/fashion-mnist";
constexpr size_t kSide = 28, kPixels = kSide * kSide;

// Reads a gzip IDX3 (uint8 images) file: magic 0x00000803, then count, rows,
// cols as big-endian uint32, then the pixels.
std::optional<std::vector<uint8_t>> LoadIdxImages(const std::string& path, size_t* count) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return std::nullopt;
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  int got;
  while ((got = gzread(f, buf, sizeof buf)) > 0) bytes.insert(bytes.end(), buf, buf + got);
  gzclose(f);
  if (got < 0 || bytes.size() < 16) return std::nullopt;
  auto be32 = [&](size_t at) {
    return (uint32_t{bytes[at]} << 24) | (uint32_t{bytes[at + 1]} << 16) |
           (uint32_t{bytes[at + 2]} << 8) | uint32_t{bytes[at + 3]};
  };
  if (be32(0) != 0x00000803 || be32(8) != kSide || be32(12) != kSide) return std::nullopt;
  *count = be32(4);
  if (bytes.size() != 16 + *count * kPixels) return std::nullopt;
  return std::vector<uint8_t>(bytes.begin() + 16, bytes.end());
}

std::vector<uint8_t> SampleRows(const std::vector<uint8_t>& images, size_t count, size_t take,
                                uint64_t seed) {
  std::vector<size_t> idx(count);
  std::iota(idx.begin(), idx.end(), size_t{0});
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < take; ++i) {
    std::uniform_int_distribution<size_t> pick(i, count - 1);
    std::swap(idx[i], idx[pick(rng)]);
  }
  std::vector<uint8_t> out(take * kPixels);
  for (size_t i = 0; i < take; ++i) {
    std::copy_n(images.begin() + static_cast<std::ptrdiff_t>(idx[i] * kPixels), kPixels,
                out.begin() + static_cast<std::ptrdiff_t>(i * kPixels));
  }
  return out;
}

std::vector<uint8_t> Brighten(std::vector<uint8_t> images, double factor) {
  for (uint8_t& p : images) p = static_cast<uint8_t>(std::clamp(std::round(p * factor), 0.0, 255.0));
  return images;
}

// Rotation about the image centre, bilinear, zero outside the image.
std::vector<uint8_t> Rotate(const std::vector<uint8_t>& images, double degrees) {
  std::vector<uint8_t> out(images.size());
  const double t = degrees * std::numbers::pi / 180, c = std::cos(t), s = std::sin(t);
  const double mid = (kSide - 1) / 2.0;
  for (size_t img = 0; img < images.size() / kPixels; ++img) {
    const uint8_t* src = images.data() + img * kPixels;
    auto at = [&](int y, int x) -> double {
      if (x < 0 || y < 0 || x >= static_cast<int>(kSide) || y >= static_cast<int>(kSide)) return 0;
      return src[y * kSide + x];
    };
    for (size_t y = 0; y < kSide; ++y) {
      for (size_t x = 0; x < kSide; ++x) {
        // Source of output pixel (x, y): rotate back by -t.
        const double dx = x - mid, dy = y - mid;
        const double sx = c * dx + s * dy + mid, sy = -s * dx + c * dy + mid;
        const int x0 = static_cast<int>(std::floor(sx)), y0 = static_cast<int>(std::floor(sy));
        const double fx = sx - x0, fy = sy - y0;
        const double v = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) +
                         fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1));
        out[img * kPixels + y * kSide + x] = static_cast<uint8_t>(std::clamp(std::round(v), 0.0, 255.0));
      }
    }
  }
  return out;
}

TEST(DriftFashionMnistTest, BrightnessAndRotationDriftUntouchedSamplesDoNot) {
  size_t n_train = 0, n_test = 0;
  const auto train = LoadIdxImages(std::string(kDir) + "/train-images-idx3-ubyte.gz", &n_train);
  const auto test = LoadIdxImages(std::string(kDir) + "/t10k-images-idx3-ubyte.gz", &n_test);
  if (!train || !test) GTEST_SKIP() << "Fashion-MNIST not found in " << kDir << " (apt install dataset-fashion-mnist)";
  ASSERT_EQ(n_train, 60000u);
  ASSERT_EQ(n_test, 10000u);

  const MatrixView reference = MatrixView::Of(*train, n_train, kPixels);
  auto profile = BuildProfile(reference);
  ASSERT_TRUE(profile.ok()) << profile.status().ToString();
  auto detector = DriftDetector::Create(std::move(profile).value());
  ASSERT_TRUE(detector.ok());
  CalibrationOptions copt;
  copt.window_rows = 1000;
  copt.windows = 100;
  copt.check_windows = 100;
  copt.seed = 1;
  auto cal = CalibrateShareThreshold(*detector, reference, copt);
  ASSERT_TRUE(cal.ok()) << cal.status().ToString();
  std::printf("calibration on train windows of 1000: threshold %.4f, max null share %.4f, "
              "false alarms %d/%d\n", cal->share_threshold, cal->max_null_share,
              cal->check_alarms, cal->check_windows);
  EXPECT_LE(cal->false_alarm_rate, 0.02);
  detector->set_calibration(*cal);

  auto verdict = [&](const std::vector<uint8_t>& rows) {
    auto d = detector->Compare(MatrixView::Of(rows, rows.size() / kPixels, kPixels));
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? *d : DatasetDrift{};
  };
  const std::vector<uint8_t> base = SampleRows(*test, n_test, 1000, 0);
  const DatasetDrift bright = verdict(Brighten(base, 0.8));
  const DatasetDrift rotated = verdict(Rotate(base, 10));
  std::printf("brightness x0.8: share %.4f (%zu/%zu features), rotation 10 deg: share %.4f (%zu/%zu)\n",
              bright.share, bright.drifted, bright.tested, rotated.share, rotated.drifted,
              rotated.tested);
  EXPECT_TRUE(bright.dataset_drift);
  EXPECT_TRUE(rotated.dataset_drift);

  int alarms = 0, any_feature = 0;
  double max_share = 0;
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    const DatasetDrift d = verdict(SampleRows(*test, n_test, 1000, seed));
    alarms += d.dataset_drift;
    any_feature += d.drifted > 0;
    max_share = std::max(max_share, d.share);
  }
  std::printf("untouched test samples: %d/100 dataset drift, %d/100 with a drifted feature, "
              "max share %.4f\n", alarms, any_feature, max_share);
  EXPECT_LE(alarms, 1);
}

}  // namespace
}  // namespace gantry::drift
