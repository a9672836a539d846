#include "bench/storage/bench_common.h"

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

namespace gantry::storage::bench {

State State::Make(int large, size_t large_bytes, uint64_t seed) {
  State s;
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  auto fill = [&x](std::vector<uint8_t>& v) {
    for (size_t i = 0; i + 8 <= v.size(); i += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      std::memcpy(v.data() + i, &x, 8);
    }
  };
  for (int i = 0; i < large; ++i) {
    const int64_t cols = 512;
    const int64_t rows = static_cast<int64_t>(large_bytes / 4 / cols);
    s.names.push_back("layers." + std::to_string(i) + ".weight");
    s.shapes.push_back({rows, cols});
    s.data.emplace_back(static_cast<size_t>(rows * cols * 4));
    fill(s.data.back());
    s.names.push_back("layers." + std::to_string(i) + ".bias");
    s.shapes.push_back({512});
    s.data.emplace_back(2048);
    fill(s.data.back());
  }
  return s;
}

uint64_t State::Bytes() const {
  uint64_t n = 0;
  for (const auto& d : data) n += d.size();
  return n;
}

void State::Touch(uint64_t round, int stride) {
  for (size_t i = 0; i < data.size(); ++i) {
    if (static_cast<int>(i / 2) % stride != 0) continue;  // weight and bias of a layer together
    std::memcpy(data[i].data(), &round, sizeof round);
  }
}

Checkpoint State::View(const std::string& model, int64_t step) const {
  Checkpoint c;
  c.prov.model = model;
  c.prov.step = step;
  for (size_t i = 0; i < data.size(); ++i) {
    c.tensors.push_back({names[i], DType::kFloat32, shapes[i], std::span<const uint8_t>(data[i])});
  }
  return c;
}

json State::Body(const std::string& model, int64_t step) const {
  json tensors = json::array();
  for (size_t i = 0; i < data.size(); ++i) {
    tensors.push_back({{"name", names[i]}, {"dtype", "float32"}, {"shape", shapes[i]}, {"data", json::binary(data[i])}});
  }
  return {{"model", model}, {"step", step}, {"tensors", std::move(tensors)}};
}

double Stats::Median() const {
  std::vector<double> s = samples;
  std::sort(s.begin(), s.end());
  if (s.empty()) return 0;
  return s.size() % 2 ? s[s.size() / 2] : (s[s.size() / 2 - 1] + s[s.size() / 2]) / 2;
}
double Stats::Min() const { return samples.empty() ? 0 : *std::min_element(samples.begin(), samples.end()); }
double Stats::Max() const { return samples.empty() ? 0 : *std::max_element(samples.begin(), samples.end()); }
json Stats::ToJson(const std::string& unit) const {
  return {{"median", Median()}, {"min", Min()}, {"max", Max()}, {"unit", unit}};
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

void PrintFigure(const std::string& bench, const std::string& metric, double value, const std::string& unit, size_t n,
                 const json& gantry, const json& baseline, const json& extra) {
  json j = {{"bench", bench}, {"metric", metric}, {"value", std::round(value * 1000) / 1000}, {"unit", unit},
            {"n", n},         {"gantry", gantry},  {"baseline", baseline}};
  for (const auto& [k, v] : extra.items()) j[k] = v;
  std::cout << j.dump() << std::endl;
}

ScratchDir::ScratchDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/gantry-bench-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  path_ = tmpl;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Args ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--rounds") == 0) a.rounds = std::max(1, std::atoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--mb") == 0) a.mb = std::max(1, std::atoi(argv[i + 1]));
  }
  return a;
}

void Check(const Status& s, const char* bench, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s: %s\n", bench, what, s.ToString().c_str());
    std::exit(1);
  }
}

}  // namespace gantry::storage::bench
