// The monitor's HTTP bearer token: a random secret kept in a file in the data
// directory (`<data>/monitor.token`, mode 0600), required on every mutating
// HTTP route. Clients on the same machine read the file; nothing else knows it.
//
// Thread safety: free functions without shared state.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace gantry::http {

// File name of the token inside the data directory.
inline constexpr const char* kTokenFileName = "monitor.token";

// Reads the token from `path`, or creates it (32 random bytes as 64 hex
// characters, written atomically with mode 0600) when the file is missing.
// Refuses a file that group or others may read, and an empty one.
Result<std::string> LoadOrCreateToken(const std::string& path);
// 64 hex characters from the kernel's random source.
Result<std::string> GenerateToken();
// Equality whose running time depends only on the lengths, not on where the
// strings first differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace gantry::http
