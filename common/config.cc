#include "common/config.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <limits>

namespace gantry {
namespace {

json ScalarToJson(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted: always a string
  if (s == "~" || s == "null" || s == "Null" || s == "NULL" || s.empty()) return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  // Integers first, so 50 stays an integer.
  try {
    size_t used = 0;
    long long v = std::stoll(s, &used, 10);
    if (used == s.size()) return static_cast<int64_t>(v);
  } catch (...) {
  }
  try {
    size_t used = 0;
    double d = std::stod(s, &used);
    if (used == s.size() && std::isfinite(d)) return d;
  } catch (...) {
  }
  return s;
}

Result<json> NodeToJson(const YAML::Node& n, int depth) {
  if (depth > 64) return Status::InvalidArgument("YAML nested too deeply");
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return json(nullptr);
    case YAML::NodeType::Scalar:
      return ScalarToJson(n);
    case YAML::NodeType::Sequence: {
      json arr = json::array();
      for (const auto& item : n) {
        GANTRY_ASSIGN_OR_RETURN(json v, NodeToJson(item, depth + 1));
        arr.push_back(std::move(v));
      }
      return arr;
    }
    case YAML::NodeType::Map: {
      json obj = json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) return Status::InvalidArgument("YAML map keys must be scalars");
        GANTRY_ASSIGN_OR_RETURN(json v, NodeToJson(kv.second, depth + 1));
        obj[kv.first.Scalar()] = std::move(v);
      }
      return obj;
    }
  }
  return json(nullptr);
}

std::string Describe(const json& j) {
  std::string s = j.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

}  // namespace

Result<json> YamlToJson(const std::string& text) {
  try {
    YAML::Node root = YAML::Load(text);
    return NodeToJson(root, 0);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string("YAML: ") + e.what());
  }
}

Result<json> LoadYamlFile(const std::string& path) {
  try {
    YAML::Node root = YAML::LoadFile(path);
    return NodeToJson(root, 0);
  } catch (const YAML::BadFile&) {
    return Status::NotFound("cannot read " + path);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(path + ": " + e.what());
  }
}

Status ApplyOverride(json& root, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    return Status::InvalidArgument("--set expects key.path=value (got '" + assignment + "')");
  }
  std::string path = assignment.substr(0, eq);
  GANTRY_ASSIGN_OR_RETURN(json value, YamlToJson(assignment.substr(eq + 1)));
  if (!root.is_object()) root = json::object();
  json* cur = &root;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (key.empty()) return Status::InvalidArgument("--set: empty segment in '" + path + "'");
    if (dot == std::string::npos) {
      (*cur)[key] = std::move(value);
      return Status::Ok();
    }
    json& next = (*cur)[key];
    if (next.is_null()) next = json::object();
    if (!next.is_object()) {
      return Status::InvalidArgument("--set: '" + path.substr(0, dot) + "' is not a map");
    }
    cur = &next;
    start = dot + 1;
  }
}

FieldReader::FieldReader(const json& obj, std::string path, std::string what)
    : obj_(obj.is_null() ? json::object() : obj), path_(std::move(path)), what_(std::move(what)) {
  if (!obj_.is_object()) {
    errors_.push_back((path_.empty() ? std::string("document") : path_) + " must be a map (got " +
                      Describe(obj_) + ")");
    obj_ = json::object();
  }
}

std::string FieldReader::FieldPath(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

bool FieldReader::Has(const std::string& key) const {
  auto it = obj_.find(key);
  return it != obj_.end() && !it->is_null();
}

const json* FieldReader::Find(const std::string& key) {
  used_.insert(key);
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) return nullptr;
  return &*it;
}

void FieldReader::TypeError(const std::string& key, const char* want, const json& got) {
  errors_.push_back(FieldPath(key) + " must be " + want + " (got " + Describe(got) + ")");
}

void FieldReader::Fail(const std::string& key, const std::string& why) {
  errors_.push_back(FieldPath(key) + " " + why);
}

void FieldReader::Get(const std::string& key, std::string& out) {
  if (const json* v = Find(key)) {
    if (v->is_string()) out = v->get<std::string>();
    else TypeError(key, "a string", *v);
  }
}

void FieldReader::Get(const std::string& key, int64_t& out) {
  if (const json* v = Find(key)) {
    if (v->is_number_integer()) out = v->get<int64_t>();
    else TypeError(key, "an integer", *v);
  }
}

void FieldReader::Get(const std::string& key, int& out) {
  int64_t v = out;
  Get(key, v);
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
    Fail(key, "is out of range (got " + std::to_string(v) + ")");
    return;
  }
  out = static_cast<int>(v);
}

void FieldReader::Get(const std::string& key, uint64_t& out) {
  if (const json* v = Find(key)) {
    if (v->is_number_unsigned() || (v->is_number_integer() && v->get<int64_t>() >= 0)) {
      out = v->get<uint64_t>();
    } else {
      TypeError(key, "a non-negative integer", *v);
    }
  }
}

void FieldReader::Get(const std::string& key, json& out) {
  if (const json* v = Find(key)) out = *v;
}

void FieldReader::Get(const std::string& key, double& out) {
  if (const json* v = Find(key)) {
    if (v->is_number()) out = v->get<double>();
    else TypeError(key, "a number", *v);
  }
}

void FieldReader::Get(const std::string& key, bool& out) {
  if (const json* v = Find(key)) {
    if (v->is_boolean()) out = v->get<bool>();
    else TypeError(key, "true or false", *v);
  }
}

void FieldReader::Get(const std::string& key, std::vector<int64_t>& out) {
  if (const json* v = Find(key)) {
    if (!v->is_array()) return TypeError(key, "a list of integers", *v);
    std::vector<int64_t> vals;
    for (const auto& e : *v) {
      if (!e.is_number_integer()) return TypeError(key, "a list of integers", *v);
      vals.push_back(e.get<int64_t>());
    }
    out = std::move(vals);
  }
}

FieldReader FieldReader::Child(const std::string& key) {
  const json* v = Find(key);
  return FieldReader(v ? *v : json::object(), FieldPath(key), what_);
}

Status FieldReader::Finish() {
  for (auto it = obj_.begin(); it != obj_.end(); ++it) {
    if (!used_.count(it.key())) {
      errors_.push_back("unknown field " + FieldPath(it.key()) +
                        " (check the spelling; docs/jobs.md lists every field)");
    }
  }
  if (errors_.empty()) return Status::Ok();
  return Status::InvalidArgument(what_ + ": " + errors_.front());
}

}  // namespace gantry
