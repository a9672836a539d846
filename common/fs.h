// Small filesystem helpers with durable writes. All return Status; none throw.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace gantry {

// Writes `data` to `path` via a temporary file, fsync and rename, then fsyncs
// the directory: readers see the old file or the new one, never a mix.
Status WriteFileAtomic(const std::string& path, std::string_view data, int mode = 0644);
Result<std::string> ReadFile(const std::string& path);
// fsync of a file or a directory by path.
Status FsyncPath(const std::string& path);
// mkdir -p.
Status MakeDirs(const std::string& path);
bool PathExists(const std::string& path);
// Absolute, lexically normal form of `path` resolved against `base`.
std::string AbsolutePath(const std::string& path, const std::string& base);

}  // namespace gantry
