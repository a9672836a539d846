#include "data/csv_reader.h"

#include <charconv>
#include <cmath>
#include <string_view>
#include <unordered_set>

#include "data/gzip_file.h"

namespace gantry::data {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

// Splits one line into trimmed fields (views into `line`).
void SplitFields(std::string_view line, std::vector<std::string_view>& out) {
  out.clear();
  size_t start = 0;
  while (true) {
    size_t comma = line.find(',', start);
    out.push_back(Trim(line.substr(start, comma == std::string_view::npos ? comma : comma - start)));
    if (comma == std::string_view::npos) return;
    start = comma + 1;
  }
}

bool ParseDouble(std::string_view s, double& v) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);  // from_chars refuses a leading '+'
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

bool ParseInt(std::string_view s, int64_t& v) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

// Walks the lines of `text`, numbering them from 1.
class LineCursor {
 public:
  explicit LineCursor(std::string_view text) : text_(text) {}
  bool Next(std::string_view& line) {
    if (pos_ >= text_.size()) return false;
    size_t nl = text_.find('\n', pos_);
    size_t end = nl == std::string_view::npos ? text_.size() : nl;
    line = text_.substr(pos_, end - pos_);
    pos_ = end + 1;
    ++number_;
    return true;
  }
  int64_t number() const { return number_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  int64_t number_ = 0;
};

bool Blank(std::string_view line) { return Trim(line).empty() && line.find(',') == std::string_view::npos; }

std::string Quote(std::string_view s) {
  constexpr size_t kShown = 40;  // enough to recognise a value, short enough for one log line
  return "'" + std::string(s.substr(0, kShown)) + (s.size() > kShown ? "...'" : "'");
}

}  // namespace

Result<CsvTable> ReadCsv(const std::string& path, const CsvOptions& options) {
  GANTRY_ASSIGN_OR_RETURN(std::string text, ReadGzipOrPlain(path, kMaxCsvBytes, "CSV file"));
  LineCursor lines(text);
  std::string_view line;
  auto at_line = [&](const std::string& why) {
    return Status::InvalidArgument(path + " line " + std::to_string(lines.number()) + ": " + why);
  };

  // Header.
  bool have_header = false;
  while (lines.Next(line)) {
    if (!Blank(line)) {
      have_header = true;
      break;
    }
  }
  if (!have_header) return Status::InvalidArgument(path + ": empty file (expected a header row naming the columns)");
  std::vector<std::string_view> fields;
  SplitFields(line, fields);
  const size_t ncols = fields.size();
  std::vector<std::string> names(fields.begin(), fields.end());
  int64_t label_col = -1;
  size_t numeric = 0;
  std::unordered_set<std::string> seen;
  for (size_t c = 0; c < ncols; ++c) {
    if (names[c].empty()) return at_line("column " + std::to_string(c + 1) + " has an empty name in the header");
    if (!seen.insert(names[c]).second) return at_line("column name '" + names[c] + "' appears twice in the header");
    if (names[c] == options.label_column) label_col = static_cast<int64_t>(c);
    double ignored = 0;
    if (ParseDouble(names[c], ignored)) ++numeric;
  }
  if (numeric == ncols) {
    return at_line("the first row holds only numbers; a header row naming the columns is required "
                   "(e.g. 'x1,x2,label')");
  }
  if (label_col < 0) {
    std::string all;
    for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
    return at_line("no column named '" + options.label_column + "' in the header (columns: " + all +
                   "); set data.label_column to the class column");
  }
  if (ncols < 2) return at_line("no feature columns besides the label column '" + options.label_column + "'");

  CsvTable out;
  for (size_t c = 0; c < ncols; ++c) {
    if (static_cast<int64_t>(c) != label_col) out.feature_names.push_back(names[c]);
  }
  const size_t nfeat = ncols - 1;
  std::vector<float> values;
  std::vector<int64_t> labels;
  while ((options.limit <= 0 || static_cast<int64_t>(labels.size()) < options.limit) && lines.Next(line)) {
    if (Blank(line)) continue;
    SplitFields(line, fields);
    if (fields.size() != ncols) {
      return at_line("has " + std::to_string(fields.size()) + " fields but the header has " +
                     std::to_string(ncols) + " (ragged row)");
    }
    for (size_t c = 0; c < ncols; ++c) {
      std::string_view f = fields[c];
      auto column = [&] { return "column '" + names[c] + "' (column " + std::to_string(c + 1) + ")"; };
      if (static_cast<int64_t>(c) == label_col) {
        int64_t label = 0;
        if (!ParseInt(f, label)) {
          return at_line(column() + " is " + Quote(f) + ", expected an integer class 0.." +
                         std::to_string(kMaxCsvClasses - 1));
        }
        if (label < 0 || label >= kMaxCsvClasses) {
          return at_line(column() + " is " + std::to_string(label) + ", out of range 0.." +
                         std::to_string(kMaxCsvClasses - 1) + " (is data.label_column the class column?)");
        }
        labels.push_back(label);
        out.max_label = std::max(out.max_label, label);
        continue;
      }
      double v = 0;
      if (f.empty()) return at_line(column() + " is empty, expected a number");
      if (!ParseDouble(f, v)) return at_line(column() + " is " + Quote(f) + ", expected a number");
      float fv = static_cast<float>(v);
      if (!std::isfinite(fv)) return at_line(column() + " is " + Quote(f) + ", expected a finite number (float32)");
      values.push_back(fv);
    }
  }
  const auto n = static_cast<int64_t>(labels.size());
  if (n == 0) return Status::InvalidArgument(path + ": no data rows after the header");
  try {
    out.features = torch::from_blob(values.data(), {n, static_cast<int64_t>(nfeat)}, torch::kFloat32).clone();
    out.labels = torch::from_blob(labels.data(), {n}, torch::kInt64).clone();
  } catch (const std::exception& e) {
    return Status::Internal("building tensors from " + path + ": " + e.what());
  }
  return out;
}

}  // namespace gantry::data
