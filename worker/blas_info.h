// Which BLAS LibTorch multiplies matrices with in this process, and how many
// threads it uses.
//
// Debian's LibTorch calls whatever libblas.so.3 the dynamic loader finds
// (the `libblas.so.3-x86_64-linux-gnu` alternative): the reference Netlib
// BLAS is 10-20x slower than OpenBLAS on training steps (docs/performance.md),
// so the worker names the one it got at start and warns about the slow one.
//
// DetectBlas() asks the loader which library provides `sgemm_` (the symbol
// LibTorch's float matmuls bind to), then looks for OpenBLAS's or MKL's
// query functions in that library and its dependencies. SetBlasThreads()
// calls `openblas_set_num_threads` when OpenBLAS provides the BLAS: its
// pthread build sizes its pool from the environment when it is loaded (one
// thread per core unless OPENBLAS_NUM_THREADS/OMP_NUM_THREADS say
// otherwise), which torch::set_num_threads() does not change, so ranks
// would otherwise oversubscribe the cores.
//
// Thread safety: call from main() before training threads start; both
// functions only read loader state or call into the BLAS library.
#pragma once

#include <string>

namespace gantry::worker {

enum class BlasKind { kOpenBlas, kMkl, kReference, kUnknown, kNone };

struct BlasInfo {
  BlasKind kind = BlasKind::kNone;
  std::string library;   // real path of the file that provides sgemm_ ("" when none)
  std::string config;    // openblas_get_config() (e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... Zen MAX_THREADS=64")
  std::string threading; // OpenBLAS build: "serial", "pthread" or "openmp"; else ""
  int threads = 0;       // OpenBLAS's current thread count; 0 when unknown
};

BlasInfo DetectBlas();

// Sets the BLAS's thread count to `threads` when the BLAS is OpenBLAS;
// returns whether it did (a serial OpenBLAS accepts and stays at 1).
bool SetBlasThreads(const BlasInfo& info, int threads);

// One line for the log: "OpenBLAS 0.3.21 ... (pthread, 1 thread) from /usr/lib/.../libblas.so.3".
std::string DescribeBlas(const BlasInfo& info);

}  // namespace gantry::worker
