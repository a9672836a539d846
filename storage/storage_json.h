// Wire encoding of the Registry's results (registry_types.h) for the
// storage service's replies. Each function builds exactly the reply body
// docs/protocol.md ("Storage") documents; the CLI and the worker read
// these shapes, so a change here is a protocol change.
//
// Thread safety: pure functions.
#pragma once

#include <vector>

#include "common/protocol.h"
#include "storage/registry_types.h"

namespace gantry::storage {

json ToJson(const SaveResult& r);
json ToJson(const VersionList& r);
json ToJson(const std::vector<ModelInfo>& models);  // {models: [...]}
json ToJson(const VersionDetail& r);                // manifest + path
json ToJson(const ShowResult& r);
json ToJson(const LineageInfo& r);
json ToJson(const DiffResult& r);
json ToJson(const DeleteResult& r);
json ToJson(const GcReport& r);
json ToJson(const FsckReport& r);
json ToJson(const RetentionPolicy& p);
json ToJson(const DiffStats& s);
json ToJson(const SweepReport& s);
// The two halves of one struct that differ by a field.
json SetAliasJson(const AliasChange& r);     // with previous
json RemoveAliasJson(const AliasChange& r);  // without
json TagJson(const TagChange& r);            // with protect
json UntagJson(const TagChange& r);          // without
json SetRetentionJson(const RetentionInfo& r);  // with expired
json GetRetentionJson(const RetentionInfo& r);  // without

}  // namespace gantry::storage
