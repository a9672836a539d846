// Provenance: where one checkpoint version comes from. Declared once and
// held by the three records of a version: the save request (Checkpoint),
// the version folder's manifest.json (Manifest) and the index row
// (VersionRow), so a save copies one struct rather than field by field.
//
// Thread safety: plain data.
#pragma once

#include <cstdint>
#include <string>

#include "common/protocol.h"

namespace gantry::storage {

struct Provenance {
  std::string model;
  std::string job_id;  // empty for a checkpoint not made by a Gantry job
  int64_t attempt = 0;
  int64_t step = 0;
  int64_t epoch = 0;
  json metrics = json::object();  // {name: number}
  json meta = json::object();     // free-form, stored as given
  // Lineage: the version this one continues from (a resume or a warm
  // start; parent_model defaults to `model`), and an opaque fingerprint of
  // the training data (the worker's choice, e.g. a hash of the file list).
  std::string parent_model;    // empty: no parent
  int64_t parent_version = 0;  // 0: no parent
  std::string data_fingerprint;
  // Wall-clock seconds of the commit; the registry sets it when it saves
  // (0 in a request).
  double created_at = 0;

  bool has_parent() const { return parent_version > 0; }
};

}  // namespace gantry::storage
