#include "storage/pickle_reader.h"

#include <gtest/gtest.h>

#include <string>

namespace gantry::storage {
namespace {

std::string Str(const std::string& s) {  // BINUNICODE
  std::string out = "X";
  uint32_t n = static_cast<uint32_t>(s.size());
  for (int i = 0; i < 4; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
  return out + s;
}

// What Python's pickler (protocol 2) writes for torch.save of
// OrderedDict(w=<2x3 float tensor, stride (1, 2)>) with a _metadata attribute.
std::string StateDictPickle() {
  using namespace std::string_literals;
  std::string p = "\x80\x02"s;
  p += "ccollections\nOrderedDict\nq\x00)Rq\x01"s;
  p += Str("w"s) + "q\x02"s;
  p += "ctorch._utils\n_rebuild_tensor_v2\nq\x03("s;
  p += "("s + Str("storage"s) + "ctorch\nFloatStorage\nq\x04"s + Str("0"s) + Str("cpu"s) + "K\x06tq\x05Q"s;
  p += "K\x00K\x02K\x03\x86K\x01K\x02\x86\x89h\x00)Rtq\x06Rq\x07"s;
  p += "s}q\x08"s + Str("_metadata"s) + "h\x00)R"s + Str(""s) + "}"s + Str("version"s) + "K\x01sssb."s;
  return p;
}

TEST(PickleReaderTest, ReadsAnOrderedDictStateDict) {
  auto tensors = ReadStateDictPickle(StateDictPickle());
  ASSERT_TRUE(tensors.ok()) << tensors.status().ToString();
  ASSERT_EQ(tensors->size(), 1u);
  const PickledTensor& t = (*tensors)[0];
  EXPECT_EQ(t.name, "w");
  EXPECT_EQ(t.storage_key, "0");
  EXPECT_EQ(t.dtype, DType::kFloat32);
  EXPECT_EQ(t.storage_numel, 6);
  EXPECT_EQ(t.size, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t.stride, (std::vector<int64_t>{1, 2}));
}

// Untrusted input: every truncation and every single-byte corruption must
// end in a value or an error, never a crash or a hang.
TEST(PickleReaderTest, MalformedInputIsAnErrorNotACrash) {
  const std::string good = StateDictPickle();
  for (size_t n = 0; n < good.size(); ++n) {
    auto r = ReadStateDictPickle(good.substr(0, n));
    EXPECT_FALSE(r.ok()) << "prefix " << n;
  }
  int errors = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      errors += !ReadStateDictPickle(bad).ok();
    }
  }
  EXPECT_GT(errors, 0);
  auto other = ReadStateDictPickle("\x80\x02K\x05.");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("something other than a dict"), std::string::npos);
  EXPECT_EQ(DTypeOfStorage("BFloat16Storage"), DType::kBFloat16);
  EXPECT_FALSE(DTypeOfStorage("ComplexFloatStorage").has_value());
}

}  // namespace
}  // namespace gantry::storage
