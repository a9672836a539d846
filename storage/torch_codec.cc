// The LibTorch plugin (torch_plugin.h): state dicts to and from the bytes
// of torch.save files. Built as libgantry_storage_torch.so with LibTorch
// 1.13 or 2.x (the APIs used here are the same in both).
#include "storage/torch_plugin.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/in_memory_adapter.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <cstring>
#include <map>
#include <optional>

#include "storage/pickle_reader.h"
#include "storage/torch_io.h"

namespace gantry::storage {
namespace {

at::ScalarType ToScalarType(DType d) {
  switch (d) {
    case DType::kFloat32: return at::kFloat;
    case DType::kFloat64: return at::kDouble;
    case DType::kFloat16: return at::kHalf;
    case DType::kBFloat16: return at::kBFloat16;
    case DType::kInt64: return at::kLong;
    case DType::kInt32: return at::kInt;
    case DType::kInt16: return at::kShort;
    case DType::kInt8: return at::kChar;
    case DType::kUInt8: return at::kByte;
    case DType::kBool: return at::kBool;
  }
  return at::kByte;
}

std::optional<DType> FromScalarType(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return DType::kFloat32;
    case at::kDouble: return DType::kFloat64;
    case at::kHalf: return DType::kFloat16;
    case at::kBFloat16: return DType::kBFloat16;
    case at::kLong: return DType::kInt64;
    case at::kInt: return DType::kInt32;
    case at::kShort: return DType::kInt16;
    case at::kChar: return DType::kInt8;
    case at::kByte: return DType::kUInt8;
    case at::kBool: return DType::kBool;
    default: return std::nullopt;
  }
}

// LibTorch's messages carry a C++ backtrace; the first line is the reason.
std::string FirstLine(const char* what) {
  std::string s(what);
  size_t nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

Result<std::string> Encode(const std::vector<StateDictTensor>& tensors) {
  try {
    c10::Dict<std::string, at::Tensor> dict;
    for (const auto& t : tensors) {
      at::Tensor x = at::empty(t.shape, at::TensorOptions().dtype(ToScalarType(t.dtype)));
      if (static_cast<uint64_t>(x.nbytes()) != t.data.size()) {
        return Status::Internal("tensor '" + t.name + "' has " + std::to_string(t.data.size()) +
                                " bytes, its shape needs " + std::to_string(x.nbytes()));
      }
      if (!t.data.empty()) std::memcpy(x.data_ptr(), t.data.data(), t.data.size());
      dict.insert(t.name, std::move(x));
    }
    std::vector<char> bytes = torch::jit::pickle_save(c10::IValue(dict));
    return std::string(bytes.begin(), bytes.end());
  } catch (const std::exception& e) {
    return Status::Internal(std::string("writing a PyTorch state dict: ") + FirstLine(e.what()));
  }
}


// Files from Python's torch.save: data.pkl read by pickle_reader.h, the
// storages gathered here through as_strided once their bounds are checked.
Result<std::vector<StateDictTensor>> DecodePythonStateDict(std::string_view bytes) {
  caffe2::serialize::PyTorchStreamReader reader(
      std::make_shared<caffe2::serialize::MemoryReadAdapter>(bytes.data(), static_cast<off_t>(bytes.size())));
  auto [pkl, pkl_size] = reader.getRecord("data.pkl");
  GANTRY_ASSIGN_OR_RETURN(auto pickled,
                          ReadStateDictPickle(std::string_view(static_cast<const char*>(pkl.get()), pkl_size)));
  std::map<std::string, std::tuple<at::DataPtr, size_t>> storages;
  std::vector<StateDictTensor> out;
  for (const auto& p : pickled) {
    auto it = storages.find(p.storage_key);
    if (it == storages.end()) {
      it = storages.emplace(p.storage_key, reader.getRecord("data/" + p.storage_key)).first;
    }
    const auto& [ptr, size] = it->second;
    const int64_t item = static_cast<int64_t>(DTypeSize(p.dtype));
    const int64_t numel = static_cast<int64_t>(size) / item;
    // The farthest element the view touches must lie inside the storage.
    int64_t last = p.storage_offset;
    bool empty = false;
    for (size_t d = 0; d < p.size.size(); ++d) {
      if (p.size[d] < 0 || p.stride[d] < 0) {
        return Status::InvalidArgument("state dict entry '" + p.name + "' has a negative size or stride");
      }
      if (p.size[d] == 0) empty = true;
      if (p.size[d] > 0) last += (p.size[d] - 1) * p.stride[d];
    }
    if (p.storage_offset < 0 || (!empty && last >= numel)) {
      return Status::InvalidArgument("state dict entry '" + p.name + "' reaches past its storage");
    }
    at::Tensor storage = at::from_blob(ptr.get(), {numel}, at::TensorOptions().dtype(ToScalarType(p.dtype)));
    at::Tensor t = empty ? at::empty(p.size, storage.options())
                         : storage.as_strided(p.size, p.stride, p.storage_offset).contiguous();
    StateDictTensor s;
    s.name = p.name;
    s.dtype = p.dtype;
    s.shape = p.size;
    s.data.resize(static_cast<size_t>(t.nbytes()));
    if (!s.data.empty()) std::memcpy(s.data.data(), t.data_ptr(), s.data.size());
    out.push_back(std::move(s));
  }
  return out;
}

// What torch::pickle_save (LibTorch's own writer, e.g. our export) produces.
Result<std::vector<StateDictTensor>> DecodeJitStateDict(std::string_view bytes) {
  std::vector<char> buf(bytes.begin(), bytes.end());
  c10::IValue value = torch::jit::pickle_load(buf);
  if (!value.isGenericDict()) {
    return Status::InvalidArgument("the file holds a " + value.tagKind() + ", not a dict of name -> tensor");
  }
  std::vector<StateDictTensor> out;
  for (const auto& entry : value.toGenericDict()) {
    if (!entry.key().isString()) return Status::InvalidArgument("state dict has a key that is not a string");
    const std::string name = entry.key().toStringRef();
    if (!entry.value().isTensor()) {
      return Status::InvalidArgument("state dict entry '" + name + "' is a " + entry.value().tagKind() +
                                     ", not a tensor");
    }
    at::Tensor t = entry.value().toTensor();
    auto dtype = FromScalarType(t.scalar_type());
    if (!dtype || t.is_quantized() || t.is_sparse()) {
      return Status::InvalidArgument("state dict entry '" + name + "' has type " +
                                     std::string(c10::toString(t.scalar_type())) +
                                     ", which checkpoints cannot hold (dense float/int/bool tensors only)");
    }
    t = t.to(at::kCPU).contiguous();
    StateDictTensor s;
    s.name = name;
    s.dtype = *dtype;
    s.shape.assign(t.sizes().begin(), t.sizes().end());
    s.data.resize(static_cast<size_t>(t.nbytes()));
    if (!s.data.empty()) std::memcpy(s.data.data(), t.data_ptr(), s.data.size());
    out.push_back(std::move(s));
  }
  return out;
}


Result<std::vector<StateDictTensor>> Decode(std::string_view bytes) {
  Status python_error;
  try {
    auto r = DecodePythonStateDict(bytes);
    if (r.ok()) return r;
    python_error = r.status();
  } catch (const std::exception& e) {
    python_error = Status::InvalidArgument(FirstLine(e.what()));
  }
  try {
    auto r = DecodeJitStateDict(bytes);
    if (r.ok()) return r;
  } catch (const std::exception&) {
  }
  return Status::InvalidArgument("not a PyTorch state dict this service can read (" + python_error.message() +
                                 "); save it in Python with torch.save(model.state_dict(), path)");
}

std::string EncodeEntry(const std::vector<StateDictTensor>& tensors, std::string* out) {
  auto r = Encode(tensors);
  if (!r.ok()) return r.status().message();
  *out = std::move(r).value();
  return "";
}

std::string DecodeEntry(std::string_view bytes, std::vector<StateDictTensor>* out) {
  auto r = Decode(bytes);
  if (!r.ok()) return r.status().message();
  *out = std::move(r).value();
  return "";
}

}  // namespace

}  // namespace gantry::storage

extern "C" __attribute__((visibility("default"))) const gantry::storage::TorchCodec* GantryStorageTorchCodec() {
  static const gantry::storage::TorchCodec codec{gantry::storage::kTorchPluginAbi, &gantry::storage::EncodeEntry,
                                                 &gantry::storage::DecodeEntry};
  return &codec;
}
