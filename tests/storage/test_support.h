// The shared test helpers (tests/support) under the storage tests' namespace.
#pragma once

#include "tests/support/test_support.h"

namespace gantry::storage::testing {
using namespace gantry::testing;  // NOLINT: TempDir, WaitFor, BinDir
}  // namespace gantry::storage::testing
