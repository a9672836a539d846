// Identifiers. Job ids are short, sortable by creation time and unique per
// data directory: "j-<yyyymmdd>-<hhmmss>-<4 hex>". Request ids are random hex.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace gantry {

class Clock;

std::string NewJobId(const Clock& clock);
std::string NewRequestId();
// Names of models, aliases, tags and jobs: 1..128 chars of [A-Za-z0-9._-],
// not starting with '.' or '-', never "." or "..". `what` names the field.
Status ValidateName(std::string_view name, std::string_view what);

}  // namespace gantry
