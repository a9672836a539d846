// Registry::Fsck: every version's files against their checksums and the
// index (see registry.h). Repair can only remove: it finishes interrupted
// deletes, drops versions whose data is missing or damaged (and the blobs
// only they used), and deletes data the index does not reference.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <map>
#include <set>

#include "common/fs.h"
#include "storage/checksum.h"
#include "storage/collector.h"
#include "storage/file_io.h"
#include "storage/registry.h"

namespace gantry::storage {
namespace {

namespace fs = std::filesystem;

struct Report {
  std::vector<FsckProblem> problems;
  void Add(const std::string& kind, const std::string& path, const std::string& detail, const std::string& model = "",
           int64_t version = 0) {
    problems.push_back({kind, path, detail, model, version});
  }
};

}  // namespace

Result<FsckReport> Registry::Fsck(bool repair) {
  Report report;
  Collector gc(root_, index_, blobs_, *clock_);
  uint64_t bytes_checked = 0;

  // Deletes a crash interrupted (harmless, but not finished).
  GANTRY_ASSIGN_OR_RETURN(auto pending, index_.PendingDeletes());
  for (const auto& p : pending) {
    report.Add("pending_delete", p, "garbage collection was interrupted before removing this path");
  }

  // Every pack: present, the size the index says, holding blobs.
  GANTRY_ASSIGN_OR_RETURN(auto packs, index_.AllPacks());
  std::map<std::string, uint64_t> pack_size;  // packs whose file is present
  for (const auto& p : packs) {
    auto size = blobs_.PackSize(p.name);
    if (!size.ok()) {
      report.Add("missing_pack", BlobStore::RelPath(p.name), size.status().message());
      continue;
    }
    pack_size[p.name] = *size;
    if (*size != p.bytes) {
      report.Add("bad_pack", BlobStore::RelPath(p.name), "holds " + std::to_string(*size) +
                 " bytes, the index says " + std::to_string(p.bytes));
    }
    if (p.blobs == 0) report.Add("unreferenced", BlobStore::RelPath(p.name), "pack without blobs in the index");
  }

  // Every indexed blob: inside its pack, with the right content.
  GANTRY_ASSIGN_OR_RETURN(auto blob_rows, index_.AllBlobs());
  std::map<std::string, BlobRow> blobs;
  std::set<std::string> bad_blobs;
  for (const auto& b : blob_rows) {
    blobs[b.key] = b;
    std::string why;
    auto size = pack_size.find(b.pack);
    if (size == pack_size.end()) {
      why = "its pack " + b.pack + " is missing";
    } else if (b.offset + b.bytes > size->second) {
      why = "reaches past the end of pack " + b.pack;
    } else {
      auto hashed = blobs_.Hash(b.location());
      bytes_checked += b.bytes;
      if (!hashed.ok()) {
        why = hashed.status().message();
      } else if (hashed->Hex() != b.hash) {
        why = "content hash " + hashed->Hex() + " does not match " + b.hash;
      }
    }
    if (!why.empty()) {
      bad_blobs.insert(b.key);
      report.Add("bad_blob", BlobStore::RelPath(b.pack) + "@" + std::to_string(b.offset), "blob " + b.key + " " + why);
    }
  }

  // Every version: folder, manifest, index agreement, checksums.
  GANTRY_ASSIGN_OR_RETURN(auto versions, index_.AllVersions());
  std::vector<const VersionRow*> damaged;
  for (const auto& v : versions) {
    const std::string dir = root_ + "/" + v.path;
    auto damage = [&](const std::string& kind, const std::string& detail) {
      report.Add(kind, v.path, detail, v.prov.model, v.version);
      if (damaged.empty() || damaged.back() != &v) damaged.push_back(&v);
    };
    auto manifest = Manifest::Load(dir);
    if (!manifest.ok()) {
      damage(PathExists(dir) ? "bad_manifest" : "missing_version", manifest.status().message());
      continue;
    }
    if (manifest->prov.model != v.prov.model || manifest->version != v.version) {
      damage("bad_manifest", "manifest describes " + manifest->prov.model + " v" + std::to_string(manifest->version));
      continue;
    }
    if (manifest->format >= 2) {
      GANTRY_ASSIGN_OR_RETURN(auto indexed, index_.Tensors(v.prov.model, v.version));
      bool agree = indexed.size() == manifest->tensors.size();
      for (size_t i = 0; agree && i < indexed.size(); ++i) {
        const auto& a = indexed[i];
        const auto& b = manifest->tensors[i];
        agree = a.name == b.name && a.hash == b.hash && a.blob == b.blob && a.bytes == b.bytes &&
                a.dtype == b.dtype && a.shape == b.shape;
      }
      if (!agree) damage("index_mismatch", "manifest tensors differ from the index's version_tensors rows");
    }
    std::optional<File> tensors_bin;  // format 1
    for (const auto& t : manifest->tensors) {
      if (!t.in_folder()) {
        auto it = blobs.find(t.blob);
        if (it == blobs.end()) {
          damage("missing_blob", "tensor '" + t.name + "' names blob " + t.blob + ", which the index lacks");
        } else if (bad_blobs.count(t.blob)) {
          damage("bad_blob", "tensor '" + t.name + "' is stored in damaged blob " + t.blob);
        } else if (it->second.hash != t.hash || it->second.bytes != t.bytes || !SizeMatchesShape(t)) {
          damage("checksum_mismatch", "tensor '" + t.name + "' does not match blob " + t.blob);
        }
        continue;
      }
      if (!tensors_bin) {
        auto f = File::OpenRead(dir + "/tensors.bin");
        if (!f.ok()) {
          damage("missing_data", f.status().message());
          break;
        }
        tensors_bin = std::move(f).value();
      }
      std::vector<uint8_t> data(t.bytes);
      Status s = tensors_bin->ReadAt(t.offset, data);
      if (s.ok()) s = VerifyTensor(t, data, v.prov.model + " v" + std::to_string(v.version));
      bytes_checked += t.bytes;
      if (!s.ok()) damage("checksum_mismatch", s.message());
    }
  }

  // Version numbers must never be handed out twice.
  std::map<std::string, int64_t> max_version;
  for (const auto& v : versions) max_version[v.prov.model] = std::max(max_version[v.prov.model], v.version);
  for (const auto& [model, max] : max_version) {
    GANTRY_ASSIGN_OR_RETURN(int64_t next, index_.NextVersion(model));
    if (next <= max) {
      report.Add("version_counter", "registry.db", "next version " + std::to_string(next) +
                 " is not above committed v" + std::to_string(max), model);
    }
  }

  // Data nothing references.
  GANTRY_ASSIGN_OR_RETURN(SweepReport debris, gc.Sweep(/*dry_run=*/true));
  for (const auto& p : debris.removed) report.Add("unreferenced", p, "not referenced by the index");
  for (const auto& p : debris.quarantined) {
    report.Add("orphan_folder", p, "version folder without an index row, number already used");
  }
  std::vector<std::string> quarantine;
  std::error_code ec;
  for (fs::directory_iterator m(CheckpointsDir(), ec), end; !ec && m != end; m.increment(ec)) {
    if (!m->is_directory() || m->path().filename().string()[0] == '.') continue;
    for (fs::directory_iterator e(m->path(), ec); !ec && e != end; e.increment(ec)) {
      if (e->path().filename().string().rfind(".orphan-", 0) == 0) {
        quarantine.push_back(e->path().string());
        report.Add("orphan_folder", fs::relative(e->path(), root_).string(),
                   "moved aside by recovery: a version folder the index does not know");
      }
    }
  }

  std::vector<FsckRepair> repaired;
  if (repair && !report.problems.empty()) {
    {
      sql::Transaction tx(index_.db());
      GANTRY_RETURN_IF_ERROR(tx.begin_status());
      for (const VersionRow* v : damaged) {
        GANTRY_RETURN_IF_ERROR(gc.UnlinkVersion(*v));
        repaired.push_back({"dropped damaged version", v->prov.model, v->version, "", 0});
        spdlog::warn("fsck --repair: dropping damaged {} v{}", v->prov.model, v->version);
      }
      GANTRY_RETURN_IF_ERROR(gc.UnlinkUnreferencedBlobs(nullptr, nullptr));
      GANTRY_RETURN_IF_ERROR(tx.Commit());
    }
    for (const auto& [model, max] : max_version) {
      GANTRY_ASSIGN_OR_RETURN(int64_t next, index_.NextVersion(model));
      if (next <= max) {
        GANTRY_RETURN_IF_ERROR(index_.SetNextVersion(model, max + 1));
        repaired.push_back({"raised version counter", model, 0, "", 0});
      }
    }
    GANTRY_ASSIGN_OR_RETURN(int64_t finished, gc.FinishPendingDeletes());
    if (finished) repaired.push_back({"finished interrupted deletes", "", 0, "", finished});
    GANTRY_ASSIGN_OR_RETURN(SweepReport swept, gc.Sweep(false));
    for (const auto& p : swept.removed) repaired.push_back({"removed unreferenced", "", 0, p, 0});
    for (const auto& q : quarantine) {
      fs::remove_all(q, ec);
      repaired.push_back({"removed orphan folder", "", 0, fs::relative(q, root_).string(), 0});
    }
  }
  FsckReport out;
  out.ok = report.problems.empty();
  if (repair && !out.ok) {
    // What a second look still finds is what repair could not fix.
    GANTRY_ASSIGN_OR_RETURN(FsckReport after, Fsck(false));
    out.ok = after.ok;
    out.remaining = std::move(after.problems);
  }
  out.versions_checked = versions.size();
  out.blobs_checked = blob_rows.size();
  out.packs_checked = packs.size();
  out.bytes_checked = bytes_checked;
  out.problems = std::move(report.problems);
  out.repaired = std::move(repaired);
  return out;
}

}  // namespace gantry::storage
