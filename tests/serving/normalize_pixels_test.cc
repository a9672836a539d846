// NormalizePixels (serving's one-pass preprocessing) against the LibTorch ops
// training uses (data/idx_reader.cc): bit for bit, for every pixel value,
// fractional values, values outside 0..255, and a non-contiguous input.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>

#include "data/idx_reader.h"
#include "serving/torch_servable.h"

namespace gantry::serving {
namespace {

// The training path's ops, as data/idx_reader.cc writes them.
torch::Tensor TorchOps(const torch::Tensor& raw, double mean, double std) {
  return raw.to(torch::kFloat32).div(255.0).sub_(mean).div_(std);
}

// Bitwise equality (EXPECT_EQ on floats would pass -0 == +0).
void ExpectSameBits(const torch::Tensor& a, const torch::Tensor& b) {
  ASSERT_EQ(a.sizes(), b.sizes());
  const torch::Tensor ca = a.contiguous(), cb = b.contiguous();
  ASSERT_EQ(std::memcmp(ca.data_ptr<float>(), cb.data_ptr<float>(), static_cast<size_t>(ca.numel()) * sizeof(float)), 0)
      << "first differing element: " << (ca != cb).nonzero().slice(0, 0, 1);
}

TEST(NormalizePixels, EveryPixelValueMatchesTheTrainingOpsBitForBit) {
  // 0..255 repeated so the vectorised and the tail loops of LibTorch both run.
  torch::Tensor pixels = torch::arange(0, 256, torch::kFloat32).repeat({7}).reshape({7, 256});
  ExpectSameBits(NormalizePixels(pixels, data::kPixelMean, data::kPixelStd),
                 TorchOps(pixels, data::kPixelMean, data::kPixelStd));
}

TEST(NormalizePixels, FractionalAndOutOfRangeValuesAndOtherConstantsMatch) {
  torch::manual_seed(7);
  torch::Tensor x = torch::rand({33, 784}) * 600 - 150;  // -150..450
  ExpectSameBits(NormalizePixels(x, data::kPixelMean, data::kPixelStd), TorchOps(x, data::kPixelMean, data::kPixelStd));
  ExpectSameBits(NormalizePixels(x, 0.1307, 0.3081), TorchOps(x, 0.1307, 0.3081));
}

TEST(NormalizePixels, NonContiguousAndIntegerInputs) {
  torch::Tensor x = (torch::rand({28, 28}) * 255).t();  // a transposed view
  ASSERT_FALSE(x.is_contiguous());
  ExpectSameBits(NormalizePixels(x, data::kPixelMean, data::kPixelStd), TorchOps(x, data::kPixelMean, data::kPixelStd));
  torch::Tensor bytes = torch::arange(0, 256, torch::kInt64).to(torch::kUInt8);
  ExpectSameBits(NormalizePixels(bytes, data::kPixelMean, data::kPixelStd),
                 TorchOps(bytes, data::kPixelMean, data::kPixelStd));
}

}  // namespace
}  // namespace gantry::serving
