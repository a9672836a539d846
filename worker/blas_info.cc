#include "worker/blas_info.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>

namespace gantry::worker {
namespace {

// The library (and its dependencies) that provides sgemm_, opened again
// without loading anything new; nullptr when sgemm_ is not loaded.
struct Provider {
  void* handle = nullptr;
  std::string path;
};

Provider FindProvider() {
  Provider p;
  void* sym = ::dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info info{};
  if (sym == nullptr || ::dladdr(sym, &info) == 0 || info.dli_fname == nullptr) return p;
  std::error_code ec;
  // Resolves the alternatives' symlinks (/lib/.../libblas.so.3 -> .../openblas-pthread/libblas.so.3).
  auto real = std::filesystem::canonical(info.dli_fname, ec);
  p.path = ec ? std::string(info.dli_fname) : real.string();
  p.handle = ::dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
  return p;
}

template <typename Fn>
Fn Lookup(void* handle, const char* name) {
  return handle == nullptr ? nullptr : reinterpret_cast<Fn>(::dlsym(handle, name));
}

}  // namespace

BlasInfo DetectBlas() {
  BlasInfo b;
  Provider p = FindProvider();
  if (p.path.empty()) return b;
  b.library = p.path;
  // dlsym on a handle also searches that library's dependencies: Debian's
  // openblas-*/libblas.so.3 forwards to libopenblas.so.0.
  if (auto get_config = Lookup<char* (*)()>(p.handle, "openblas_get_config")) {
    b.kind = BlasKind::kOpenBlas;
    b.config = get_config();
    if (auto parallel = Lookup<int (*)()>(p.handle, "openblas_get_parallel")) {
      const int mode = parallel();
      b.threading = mode == 0 ? "serial" : mode == 1 ? "pthread" : mode == 2 ? "openmp" : "unknown";
    }
    if (auto num = Lookup<int (*)()>(p.handle, "openblas_get_num_threads")) b.threads = num();
  } else if (Lookup<void*>(p.handle, "mkl_get_max_threads") != nullptr) {
    b.kind = BlasKind::kMkl;
  } else if (p.path.find("/blas/libblas.so") != std::string::npos) {
    // Where Debian installs the Netlib reference (package libblas3).
    b.kind = BlasKind::kReference;
  } else {
    b.kind = BlasKind::kUnknown;
  }
  if (p.handle != nullptr) ::dlclose(p.handle);
  return b;
}

bool SetBlasThreads(const BlasInfo& info, int threads) {
  if (info.kind != BlasKind::kOpenBlas || threads < 1) return false;
  Provider p = FindProvider();
  auto set = Lookup<void (*)(int)>(p.handle, "openblas_set_num_threads");
  if (set != nullptr) set(threads);
  if (p.handle != nullptr) ::dlclose(p.handle);
  return set != nullptr;
}

std::string DescribeBlas(const BlasInfo& b) {
  switch (b.kind) {
    case BlasKind::kNone:
      // e.g. a LibTorch that links MKL statically (PyTorch's own builds).
      return "no shared BLAS provides sgemm_ (LibTorch may carry its own, e.g. MKL linked statically)";
    case BlasKind::kOpenBlas: {
      std::string s = b.config.empty() ? "OpenBLAS" : b.config;
      s += " (" + (b.threading.empty() ? std::string("?") : b.threading) + ", " + std::to_string(b.threads) +
           (b.threads == 1 ? " thread" : " threads") + ")";
      return s + " from " + b.library;
    }
    case BlasKind::kMkl:
      return "Intel MKL from " + b.library;
    case BlasKind::kReference:
      return "reference Netlib BLAS from " + b.library;
    case BlasKind::kUnknown:
      break;
  }
  return "unknown BLAS from " + b.library;
}

}  // namespace gantry::worker
