// torch_io.h: finds and loads the LibTorch plugin (torch_plugin.h).
#include "storage/torch_io.h"

#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <mutex>

#include "common/fs.h"
#include "common/process.h"
#include "storage/torch_plugin.h"

namespace gantry::storage {
namespace {

#ifdef GANTRY_STORAGE_HAS_TORCH
constexpr bool kBuiltWithTorch = true;
#else
constexpr bool kBuiltWithTorch = false;
#endif

struct Plugin {
  const TorchCodec* codec = nullptr;
  std::string error;  // why codec is null
};

// Where the plugin may be: $GANTRY_STORAGE_TORCH_PLUGIN, next to the
// running binary (the build's bin/), the install's lib/gantry/, and the
// build folder this binary came from (tests run from build/tests/).
std::vector<std::string> Candidates() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("GANTRY_STORAGE_TORCH_PLUGIN"); env && *env) out.push_back(env);
  const std::string self = SelfDir();
  out.push_back(self + "/" + kTorchPluginFile);
  out.push_back(self + "/../lib/gantry/" + kTorchPluginFile);
#ifdef GANTRY_STORAGE_TORCH_PLUGIN_BUILD_PATH
  out.push_back(GANTRY_STORAGE_TORCH_PLUGIN_BUILD_PATH);
#endif
  return out;
}

const Plugin& Load() {
  static Plugin plugin;
  static std::once_flag once;
  std::call_once(once, [] {
    if (!kBuiltWithTorch) {
      plugin.error = "built without LibTorch: PyTorch import/export needs gantry-storage built where CMake "
                     "finds Torch (Debian: apt-get install libtorch-dev, then rebuild)";
      return;
    }
    std::string tried;
    for (const auto& path : Candidates()) {
      if (!PathExists(path)) {
        tried += (tried.empty() ? "" : ", ") + path;
        continue;
      }
      void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!handle) {
        plugin.error = std::string("cannot load the LibTorch plugin: ") + ::dlerror();
        return;
      }
      auto entry = reinterpret_cast<const TorchCodec* (*)()>(::dlsym(handle, kTorchPluginSymbol));
      const TorchCodec* codec = entry ? entry() : nullptr;
      if (!codec || codec->abi != kTorchPluginAbi) {
        plugin.error = path + " is not a plugin of this gantry-storage (rebuild both)";
        return;
      }
      spdlog::info("loaded the LibTorch plugin {}", path);
      plugin.codec = codec;
      return;
    }
    plugin.error = "the LibTorch plugin " + std::string(kTorchPluginFile) + " is missing (looked in " + tried +
                   "); install it with gantry-storage or set GANTRY_STORAGE_TORCH_PLUGIN";
  });
  return plugin;
}

}  // namespace

bool TorchInteropAvailable() { return Load().codec != nullptr; }

Result<std::string> EncodeTorchStateDict(const std::vector<StateDictTensor>& tensors) {
  const Plugin& p = Load();
  if (!p.codec) return Status::Unavailable(p.error);
  std::string out;
  std::string error = p.codec->encode(tensors, &out);
  if (!error.empty()) return Status::Internal("writing a PyTorch state dict: " + error);
  return out;
}

Result<std::vector<StateDictTensor>> DecodeTorchStateDict(std::string_view bytes) {
  const Plugin& p = Load();
  if (!p.codec) return Status::Unavailable(p.error);
  std::vector<StateDictTensor> out;
  std::string error = p.codec->decode(bytes, &out);
  if (!error.empty()) return Status::InvalidArgument(error);
  return out;
}

}  // namespace gantry::storage
