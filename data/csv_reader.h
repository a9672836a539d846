// ReadCsv: a CSV file of numeric features and one integer label column.
//
// Format (docs/worker.md, "Bringing a model and data"):
//   - The first non-blank line is a header naming every column; a first row
//     made only of numbers is refused as a missing header.
//   - Fields are separated by commas; surrounding spaces and one pair of
//     surrounding double quotes are removed. Quoted commas are not supported.
//   - Every row has as many fields as the header (blank lines are skipped).
//   - Feature columns hold finite numbers; the label column (by header name)
//     holds integer classes 0..kMaxCsvClasses-1.
//   - Plain or gzip (detected from the content), \n or \r\n line ends.
// Features keep the header's column order, label column removed. Values are
// used as they are (no normalisation): scale them before or in the model.
// Every error names the file, the line (1-based) and the column (name and
// 1-based position) and says what was expected.
//
// Thread safety: a free function without shared state.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace gantry::data {

// Gantry trains classifiers; a label beyond this is more likely a wrong
// data.label_column (an id or a measurement) than a real class.
inline constexpr int64_t kMaxCsvClasses = 10000;
// Decompressed size limit: 2 GiB of text is ~100M numbers, far beyond what
// an in-memory dataset of one rank should hold.
inline constexpr int64_t kMaxCsvBytes = int64_t{2} << 30;

struct CsvOptions {
  std::string label_column = "label";
  int64_t limit = 0;  // keep only the first N data rows (0 = all)
};

struct CsvTable {
  std::vector<std::string> feature_names;  // header order, without the label column
  torch::Tensor features;                  // float32 [N, F]
  torch::Tensor labels;                    // int64 [N]
  int64_t max_label = -1;
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

Result<CsvTable> ReadCsv(const std::string& path, const CsvOptions& options);

}  // namespace gantry::data
