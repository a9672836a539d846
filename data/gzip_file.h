// ReadGzipOrPlain: the whole content of a file, gunzipped when it is gzip.
//
// Compression is detected from the content (zlib reads plain files
// transparently), not from the name. A truncated or corrupt gzip stream is an
// error, not a short read. `max_bytes` bounds the decompressed size so that a
// corrupt or hostile file cannot make a rank allocate without limit.
//
// Thread safety: a free function without shared state.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace gantry::data {

// Errors are InvalidArgument and start with "<what> <path>: ".
Result<std::string> ReadGzipOrPlain(const std::string& path, int64_t max_bytes,
                                    const std::string& what);

}  // namespace gantry::data
