// YAML configuration loading. YAML is read into nlohmann::json (one tree type
// for YAML files, wire messages and --json output); FieldReader then pulls
// typed fields out of it with errors that name the field path, and reports
// unknown fields so typos are caught instead of ignored.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/protocol.h"

namespace gantry {

// Parses YAML text into JSON. Unquoted scalars become numbers, booleans or
// null where they read as such; quoted scalars stay strings.
Result<json> YamlToJson(const std::string& text);
Result<json> LoadYamlFile(const std::string& path);
// Applies "a.b.c=value" (value parsed as a YAML scalar) to `root`.
Status ApplyOverride(json& root, const std::string& assignment);

// Reads fields of one JSON object. `path` is the object's own path ("train").
// Errors are collected; Finish() returns the first, prefixed by `what`.
class FieldReader {
 public:
  FieldReader(const json& obj, std::string path, std::string what = "job spec");

  // Each Get leaves `out` unchanged when the field is absent.
  void Get(const std::string& key, std::string& out);
  void Get(const std::string& key, int64_t& out);
  void Get(const std::string& key, int& out);
  void Get(const std::string& key, uint64_t& out);
  void Get(const std::string& key, double& out);
  void Get(const std::string& key, bool& out);
  void Get(const std::string& key, std::vector<int64_t>& out);
  // Any JSON value as is (validated by the caller).
  void Get(const std::string& key, json& out);
  // A nested object: returns a reader for it (an empty object when absent).
  // The caller finishes the child reader itself.
  FieldReader Child(const std::string& key);
  bool Has(const std::string& key) const;

  // Records a range/semantic error on `key`.
  void Fail(const std::string& key, const std::string& why);
  // Unknown fields become errors; returns the first error or ok.
  Status Finish();
  std::string FieldPath(const std::string& key) const;

 private:
  const json* Find(const std::string& key);
  void TypeError(const std::string& key, const char* want, const json& got);

  json obj_;
  std::string path_;
  std::string what_;
  std::set<std::string> used_;
  std::vector<std::string> errors_;
};

}  // namespace gantry
