// PyTorch interop: export read by Python's torch.load, import of what
// Python's torch.save wrote. The Python half needs /usr/bin/python3 with
// torch (Debian: apt-get install python3-torch) and skips without it.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/fs.h"
#include "common/process.h"
#include "storage/storage_service.h"
#include "storage/torch_io.h"
#include "tests/storage/test_support.h"

namespace gantry::storage {
namespace {

using testing::Pattern;
namespace fs = std::filesystem;

constexpr const char* kPython = "/usr/bin/python3";

// Runs python3 with `args`; returns its exit code, output in `out`.
int RunPython(const std::vector<std::string>& args, const std::string& log, std::string* out = nullptr) {
  SpawnOptions o;
  o.argv = {kPython};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.stdout_path = log;
  o.env["OMP_NUM_THREADS"] = "1";
  auto child = ChildProcess::Spawn(o);
  if (!child.ok()) return -1;
  ExitInfo e = child->Wait();
  if (out) {
    auto text = ReadFile(log);
    *out = text.ok() ? *text : "";
  }
  return e.ok() ? 0 : (e.exit_code >= 0 ? e.exit_code : 128 + e.signal);
}

bool PythonTorchAvailable(const std::string& tmp) {
  static const bool available = PathExists(kPython) && RunPython({"-c", "import torch"}, tmp + "/probe.log") == 0;
  return available;
}

#define SKIP_WITHOUT_PYTHON_TORCH(tmp)                                                          \
  if (!TorchInteropAvailable()) GTEST_SKIP() << "gantry-storage was built without LibTorch";    \
  if (!PythonTorchAvailable(tmp))                                                               \
  GTEST_SKIP() << "Python torch is missing: apt-get install python3-torch (" << kPython << ")"

// One tensor of every dtype, small and large, plus
// optimizer state an export leaves out.
json Tensors() {
  auto t = [](const std::string& name, const std::string& dtype, std::vector<int64_t> shape, size_t item,
              uint64_t seed) {
    size_t n = item;
    for (auto d : shape) n *= static_cast<size_t>(d);
    auto data = Pattern(n, seed);
    if (dtype == "bool") {
      for (auto& b : data) b &= 1;
    }
    if (dtype == "float32" || dtype == "float64" || dtype == "float16" || dtype == "bfloat16") {
      // Keep every value finite and not NaN, so equality in Python is exact.
      for (size_t i = item - 1; i < data.size(); i += item) data[i] &= 0x3f;
    }
    return json{{"name", name}, {"dtype", dtype}, {"shape", shape}, {"data", json::binary(data)}};
  };
  return {t("fc.weight", "float32", {300, 100}, 4, 1), t("fc.bias", "float32", {100}, 4, 2),
          t("emb", "float64", {3, 2}, 8, 3),           t("half", "float16", {2, 2}, 2, 4),
          t("bf", "bfloat16", {5}, 2, 5),              t("steps", "int64", {}, 8, 6),
          t("i32", "int32", {2}, 4, 7),                t("i16", "int16", {2}, 2, 8),
          t("i8", "int8", {3}, 1, 9),                  t("u8", "uint8", {4}, 1, 10),
          t("mask", "bool", {2, 2}, 1, 11),            t("optimizer/fc.weight.momentum", "float32", {10}, 4, 12)};
}

class StorageTorchTest : public ::testing::Test {
 protected:
  StorageTorchTest() : registry_(std::move(Registry::Open(dir_.path() + "/data", clock_)).value()), server_(ctx_, {}) {
    RegisterStorageHandlers(server_, registry_);
  }
  Reply Call(const std::string& type, const json& body) {
    return std::move(DecodeReply(server_.Dispatch(EncodeRequest({type, "r", "", body})))).value();
  }
  testing::TempDir dir_;
  ManualClock clock_;
  Registry registry_;
  zmq::context_t ctx_;
  RpcServer server_;
};

TEST_F(StorageTorchTest, EncodeDecodeRoundTripsEveryDType) {
  if (!TorchInteropAvailable()) GTEST_SKIP() << "gantry-storage was built without LibTorch";
  std::vector<StateDictTensor> in;
  for (const auto& t : Tensors()) {
    in.push_back({t["name"], *ParseDType(t["dtype"].get<std::string>()), t["shape"].get<std::vector<int64_t>>(),
                  static_cast<const std::vector<uint8_t>&>(t["data"].get_binary())});
  }
  auto bytes = EncodeTorchStateDict(in);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto out = DecodeTorchStateDict(*bytes);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ((*out)[i].name, in[i].name);
    EXPECT_EQ((*out)[i].dtype, in[i].dtype) << in[i].name;
    EXPECT_EQ((*out)[i].shape, in[i].shape) << in[i].name;
    EXPECT_EQ((*out)[i].data, in[i].data) << in[i].name;
  }
  auto junk = DecodeTorchStateDict("definitely not a zip");
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.status().message().find("torch.save(model.state_dict()"), std::string::npos);
}

TEST_F(StorageTorchTest, PythonTorchLoadReadsAnExportedVersion) {
  SKIP_WITHOUT_PYTHON_TORCH(dir_.path());
  json tensors = Tensors();
  ASSERT_TRUE(Call("save_checkpoint", {{"model", "m"}, {"step", 1}, {"tensors", tensors}}).status.ok());
  Reply exported = Call("export_version", {{"model", "m"}, {"ref", "latest"}, {"format", "torch"}});
  ASSERT_TRUE(exported.status.ok()) << exported.status.ToString();
  EXPECT_EQ(exported.body["tensors"], 11);  // optimizer state left out
  const auto& bin = exported.body["data"].get_binary();
  const std::string pt = dir_.path() + "/model.pt";
  ASSERT_TRUE(WriteFileAtomic(pt, std::string(bin.begin(), bin.end())).ok());

  // Python writes what it loaded: type, names in order, dtype, shape, and
  // each tensor's raw bytes to <out>/<i>.bin.
  const std::string out = dir_.path() + "/py";
  ASSERT_TRUE(MakeDirs(out).ok());
  const std::string script = R"py(
import json, sys, torch
d = torch.load(sys.argv[1])
res = {"type": type(d).__name__, "tensors": []}
for i, (k, v) in enumerate(d.items()):
    res["tensors"].append({"name": k, "dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)})
    with open(f"{sys.argv[2]}/{i}.bin", "wb") as f:
        f.write(v.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
print(json.dumps(res))
)py";
  ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/load.py", script).ok());
  std::string output;
  ASSERT_EQ(RunPython({dir_.path() + "/load.py", pt, out}, dir_.path() + "/load.log", &output), 0) << output;
  json got = json::parse(output.substr(output.rfind("{\"type\"")));
  EXPECT_EQ(got["type"], "dict");
  const std::map<std::string, std::string> torch_names = {
      {"float32", "float32"}, {"float64", "float64"}, {"float16", "float16"}, {"bfloat16", "bfloat16"},
      {"int64", "int64"},     {"int32", "int32"},     {"int16", "int16"},     {"int8", "int8"},
      {"uint8", "uint8"},     {"bool", "bool"}};
  ASSERT_EQ(got["tensors"].size(), 11u);
  for (size_t i = 0; i < 11; ++i) {
    SCOPED_TRACE(tensors[i]["name"].get<std::string>());
    EXPECT_EQ(got["tensors"][i]["name"], tensors[i]["name"]);
    EXPECT_EQ(got["tensors"][i]["dtype"], torch_names.at(tensors[i]["dtype"]));
    EXPECT_EQ(got["tensors"][i]["shape"], tensors[i]["shape"]);
    auto bytes = ReadFile(out + "/" + std::to_string(i) + ".bin");
    ASSERT_TRUE(bytes.ok());
    const auto& want = tensors[i]["data"].get_binary();
    EXPECT_EQ(std::vector<uint8_t>(bytes->begin(), bytes->end()), static_cast<const std::vector<uint8_t>&>(want));
  }
}

TEST_F(StorageTorchTest, ImportsAStateDictSavedByPython) {
  SKIP_WITHOUT_PYTHON_TORCH(dir_.path());
  // A real module's state_dict: an OrderedDict with _metadata, a 0-d int64
  // buffer, and a tied (shared-storage) parameter.
  const std::string script = R"py(
import json, sys, torch
torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Linear(64, 300), torch.nn.BatchNorm1d(300), torch.nn.Linear(300, 64))
m[2].weight = torch.nn.Parameter(m[0].weight.t())  # a non-contiguous view
sd = m.state_dict()
torch.save(sd, sys.argv[1])
res = []
for i, (k, v) in enumerate(sd.items()):
    res.append({"name": k, "dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)})
    with open(f"{sys.argv[2]}/{i}.bin", "wb") as f:
        f.write(v.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
print(json.dumps(res))
)py";
  const std::string out = dir_.path() + "/py";
  ASSERT_TRUE(MakeDirs(out).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/save.py", script).ok());
  const std::string pt = dir_.path() + "/sd.pt";
  std::string output;
  ASSERT_EQ(RunPython({dir_.path() + "/save.py", pt, out}, dir_.path() + "/save.log", &output), 0) << output;
  json want = json::parse(output.substr(output.rfind("[{")));

  auto file = ReadFile(pt);
  ASSERT_TRUE(file.ok());
  Reply imported = Call("import_version", {{"model", "pretrained"}, {"format", "torch"},
                                           {"data", json::binary(std::vector<uint8_t>(file->begin(), file->end()))}});
  ASSERT_TRUE(imported.status.ok()) << imported.status.ToString();
  EXPECT_EQ(imported.body["version"], 1);
  auto loaded = registry_.Load("pretrained", 1);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_EQ(loaded->manifest.tensors.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const TensorRecord& t = loaded->manifest.tensors[i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, want[i]["name"]);
    EXPECT_EQ(std::string(DTypeName(t.dtype)), want[i]["dtype"].get<std::string>());
    EXPECT_EQ(json(t.shape), want[i]["shape"]);
    auto bytes = ReadFile(out + "/" + std::to_string(i) + ".bin");
    ASSERT_TRUE(bytes.ok());
    EXPECT_EQ(loaded->data[i], std::vector<uint8_t>(bytes->begin(), bytes->end()));
  }
  EXPECT_EQ(loaded->manifest.prov.meta["source"], "torch import");
}

}  // namespace
}  // namespace gantry::storage
