// Shared by the drift tests: deterministic samples (std::mt19937_64 is fully
// specified; the normal variates come from our own Box–Muller, not from
// std::normal_distribution, whose algorithm is implementation-defined), and a
// scipy runner that skips when scipy is missing.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <numbers>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace gantry::drift::testing {

inline double Uniform01(std::mt19937_64& rng) {
  return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53;
}

inline std::vector<double> Normal(std::mt19937_64& rng, size_t n, double shift) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) {
    const double u1 = Uniform01(rng), u2 = Uniform01(rng);
    v[i] = shift + std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
  }
  return v;
}

// A python3 that imports scipy: $GANTRY_PYTHON, /usr/bin/python3 (Debian's,
// where python3-scipy installs), then python3 on PATH.
inline std::optional<std::string> PythonWithScipy() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("GANTRY_PYTHON")) candidates.emplace_back(env);
  candidates.emplace_back("/usr/bin/python3");
  candidates.emplace_back("python3");
  for (const std::string& py : candidates) {
    const std::string cmd = py + " -c 'import scipy.stats' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return py;
  }
  return std::nullopt;
}

}  // namespace gantry::drift::testing
