#include "data/csv_reader.h"

#include <gtest/gtest.h>

#include "tests/support/data_test_util.h"

namespace gantry::data {
namespace {

using data_testing::Contains;
using data_testing::PathIn;
using data_testing::TempDir;
using data_testing::WriteFile;

TEST(CsvReader, ReadsValuesLabelsAndOrder) {
  TempDir dir;
  const std::string path = PathIn(dir, "train.csv");
  // Label in the middle, spaces, quotes, signs, exponents, CRLF, blank lines.
  WriteFile(path, "\n a , \"b\" ,label,c\r\n1, 2.5 ,3,-4\r\n\r\n+0.5,-2.5e1,0,1e-3\r\n7,8,9,10");
  auto t = ReadCsv(path, {});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->feature_names, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(t->size(), 3);
  EXPECT_EQ(t->features.sizes(), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(t->features.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(t->features.equal(torch::tensor({{1.0f, 2.5f, -4.0f}, {0.5f, -25.0f, 1e-3f}, {7.0f, 8.0f, 10.0f}})))
      << t->features;
  EXPECT_TRUE(t->labels.equal(torch::tensor({3, 0, 9}, torch::kInt64))) << t->labels;
  EXPECT_EQ(t->max_label, 9);
}

TEST(CsvReader, ReadsGzipAndAppliesLimit) {
  TempDir dir;
  const std::string path = PathIn(dir, "train.csv.gz");
  WriteFile(path, "x,y\n1,0\n2,1\n3,2\n4,3\n", /*gzip=*/true);
  auto t = ReadCsv(path, {"y", 2});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE(t->labels.equal(torch::tensor({0, 1}, torch::kInt64)));
  EXPECT_TRUE(t->features.equal(torch::tensor({{1.0f}, {2.0f}})));
  EXPECT_EQ(t->max_label, 1);
}

struct BadCase {
  const char* name;
  std::string text;
  std::string expected;  // must appear in the message, after the file's path
};

TEST(CsvReader, RefusesMalformedInputWithLineAndColumn) {
  const std::vector<BadCase> cases = {
      {"missing_label", "x,y\n1,2\n", "line 1: no column named 'label' in the header (columns: x, y); set data.label_column"},
      {"ragged", "x,label\n1,2\n3\n", "line 3: has 1 fields but the header has 2 (ragged row)"},
      {"too_many", "x,label\n1,2,3\n", "line 2: has 3 fields but the header has 2"},
      {"non_numeric", "x,label\n1,2\nfoo,1\n", "line 3: column 'x' (column 1) is 'foo', expected a number"},
      {"label_word", "x,label\n1,cat\n", "line 2: column 'label' (column 2) is 'cat', expected an integer class 0..9999"},
      {"label_fraction", "x,label\n1,2.5\n", "column 'label' (column 2) is '2.5', expected an integer class"},
      {"label_negative", "label,x\n-1,1\n", "line 2: column 'label' (column 1) is -1, out of range 0..9999"},
      {"label_huge", "x,label\n1,10000\n", "is 10000, out of range 0..9999 (is data.label_column the class column?)"},
      {"empty_value", "x,label\n,1\n", "line 2: column 'x' (column 1) is empty, expected a number"},
      {"nan", "x,label\nnan,1\n", "column 'x' (column 1) is 'nan', expected a finite number"},
      {"overflow", "x,label\n1e300,1\n", "is '1e300', expected a finite number (float32)"},
      {"no_header", "1,2\n3,4\n", "line 1: the first row holds only numbers; a header row naming the columns is required"},
      {"duplicate", "x,x,label\n1,2,3\n", "column name 'x' appears twice"},
      {"empty_name", "x,,label\n1,2,3\n", "column 2 has an empty name"},
      {"only_label", "label\n1\n", "no feature columns besides the label column 'label'"},
      {"empty_file", "\n\n", "empty file (expected a header row"},
      {"header_only", "x,label\n", "no data rows after the header"},
  };
  TempDir dir;
  for (const BadCase& c : cases) {
    const std::string path = PathIn(dir, std::string(c.name) + ".csv");
    WriteFile(path, c.text);
    auto t = ReadCsv(path, {});
    ASSERT_FALSE(t.ok()) << c.name;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_TRUE(Contains(t.status().message(), path)) << c.name << ": " << t.status().message();
    EXPECT_TRUE(Contains(t.status().message(), c.expected)) << c.name << ": " << t.status().message();
  }
}

TEST(CsvReader, ErrorAfterLimitIsNotRead) {
  TempDir dir;
  const std::string path = PathIn(dir, "t.csv");
  WriteFile(path, "x,label\n1,1\n2,2\nbroken\n");
  EXPECT_TRUE(ReadCsv(path, {"label", 2}).ok());
  EXPECT_FALSE(ReadCsv(path, {"label", 3}).ok());
}

TEST(CsvReader, MissingFileSaysCannotOpen) {
  TempDir dir;
  auto t = ReadCsv(PathIn(dir, "nope.csv"), {});
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(Contains(t.status().message(), "nope.csv: cannot open")) << t.status().message();
}

}  // namespace
}  // namespace gantry::data
