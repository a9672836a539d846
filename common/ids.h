// Identifiers. Job ids are short, sortable by creation time and unique per
// data directory: "j-<yyyymmdd>-<hhmmss>-<4 hex>". Request ids are 16 random
// hex characters (also the names of storage pack files, BlobStore).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace gantry {

class Clock;

std::string NewJobId(const Clock& clock);
std::string NewRequestId();
// 128 random bits as 32 hex characters, from the OS's generator: for secrets
// such as the storage inbox's same-host token (NewRequestId is only unique).
std::string NewSecretToken();
// Names of models, aliases, tags and jobs: 1..128 chars of [A-Za-z0-9._-],
// not starting with '.' or '-', never "." or "..". `what` names the field.
Status ValidateName(std::string_view name, std::string_view what);

}  // namespace gantry
