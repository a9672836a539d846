// The shared test helpers (tests/support) under the storage tests' namespace,
// plus builders for checkpoint bodies.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/clock.h"
#include "common/protocol.h"
#include "storage/checkpoint.h"
#include "storage/registry.h"
#include "tests/support/test_support.h"

namespace gantry::storage::testing {
using namespace gantry::testing;  // NOLINT: TempDir, WaitFor, BinDir

// Deterministic bytes that differ for every seed (xorshift).
inline std::vector<uint8_t> Pattern(size_t n, uint64_t seed) {
  std::vector<uint8_t> v(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v[i] = static_cast<uint8_t>(x);
  }
  return v;
}

// {name, dtype: uint8, shape: [n], data}.
inline json ByteTensor(const std::string& name, const std::vector<uint8_t>& data) {
  return {{"name", name}, {"dtype", "uint8"}, {"shape", {data.size()}}, {"data", json::binary(data)}};
}

inline json SaveBody(const std::string& model, int64_t step, json tensors, json metrics = json::object()) {
  return {{"model", model}, {"step", step}, {"metrics", std::move(metrics)}, {"tensors", std::move(tensors)}};
}

// Parses and saves; the json must outlive nothing (Save copies what it keeps).
inline Result<SaveResult> SaveJson(Registry& reg, const json& body) {
  GANTRY_ASSIGN_OR_RETURN(Checkpoint c, ParseCheckpoint(body));
  return reg.Save(c);
}

// A registry in a fresh temp dir with a manual clock.
class RegistryTestBase : public ::testing::Test {
 protected:
  Registry Open() {
    auto r = Registry::Open(dir_.path(), clock_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return std::move(r).value();
  }
  std::string PackDir() const { return dir_.path() + "/checkpoints/.packs"; }

  TempDir dir_;
  ManualClock clock_;
};

}  // namespace gantry::storage::testing
