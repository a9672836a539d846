// Manifest: what one version holds, written as <version dir>/manifest.json.
//
// Format 2 (this code) records every tensor's content hash and blob key;
// the bytes live in the shared blob store (blob_store.h), located through
// the index, so a folder holds only its manifest. Format 1 (before
// deduplication) put every tensor into the folder's tensors.bin ("offset")
// and checksummed it with CRC-32; such versions stay readable.
//
//   {format: 2, model, version, job_id, attempt, step, epoch, created_at,
//    metrics, meta, optimizer_state, trainer_state,
//    lineage: {parent: {model, version} | null, data_fingerprint},
//    bytes, hash_algorithm, tensors: [{name, dtype, shape, bytes, hash, blob}]}
//
// Thread safety: plain data; functions are pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/protocol.h"
#include "storage/dtype.h"
#include "storage/provenance.h"

namespace gantry::storage {

inline constexpr int kManifestFormat = 2;

struct TensorRecord {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  uint64_t bytes = 0;
  std::string hash;               // ContentHash::Hex(); empty in format 1
  std::optional<uint32_t> crc32;  // format 1 only
  std::string blob;               // blob key; empty in format 1
  uint64_t offset = 0;            // format 1: into the folder's tensors.bin

  bool in_folder() const { return blob.empty(); }
  json ToJson() const;
};

struct Manifest {
  int format = kManifestFormat;
  int64_t version = 0;
  Provenance prov;
  json optimizer_state = json::object();
  json trainer_state = json::object();
  uint64_t bytes = 0;          // sum of tensor sizes
  std::vector<TensorRecord> tensors;

  json ToJson() const;
  // Reads both formats; corruption naming `where` for anything malformed.
  static Result<Manifest> FromJson(const json& j, const std::string& where);
  static Result<Manifest> Load(const std::string& version_dir);
};

// Strings from the wire may hold invalid UTF-8; JSON text must not.
std::string DumpJson(const json& j, int indent = -1);

}  // namespace gantry::storage
