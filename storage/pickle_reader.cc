#include "storage/pickle_reader.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

namespace gantry::storage {
namespace {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

// A pickled value, as far as a state dict needs it. Callables other than
// the known ones become kOpaque and are never run.
struct Value {
  enum Kind { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage, kTensor, kOpaque };
  Kind kind = kNone;
  int64_t i = 0;
  std::string s;                // string, "module.name" of a global, storage key
  std::vector<ValuePtr> items;  // tuple/list items; dict: key, value, key, value...
  DType dtype = DType::kUInt8;  // storage
  PickledTensor tensor;
};

ValuePtr Make(Value::Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

Status Bad(const std::string& why) {
  return Status::InvalidArgument("state dict pickle: " + why +
                                 "; save it with torch.save(model.state_dict(), path)");
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  Result<ValuePtr> Run() {
    while (pos_ < in_.size()) {
      const auto op = static_cast<uint8_t>(in_[pos_++]);
      if (op == '.') {
        if (stack_.empty()) return Bad("STOP with an empty stack");
        return stack_.back();
      }
      GANTRY_RETURN_IF_ERROR(Step(op));
    }
    return Bad("truncated (no STOP)");
  }

 private:
  Result<uint64_t> Le(int n) {
    if (in_.size() - pos_ < static_cast<size_t>(n)) return Bad("truncated");
    uint64_t v = 0;
    for (int k = 0; k < n; ++k) v |= static_cast<uint64_t>(static_cast<uint8_t>(in_[pos_ + k])) << (8 * k);
    pos_ += n;
    return v;
  }
  Result<std::string> Bytes(uint64_t n) {
    if (in_.size() - pos_ < n) return Bad("string longer than the pickle");
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  Result<std::string> Line() {
    size_t nl = in_.find('\n', pos_);
    if (nl == std::string_view::npos) return Bad("unterminated GLOBAL");
    std::string s(in_.substr(pos_, nl - pos_));
    pos_ = nl + 1;
    return s;
  }
  Result<ValuePtr> Pop() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) return Bad("stack underflow");
    ValuePtr v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Result<std::vector<ValuePtr>> PopToMark() {
    if (marks_.empty()) return Bad("no MARK");
    std::vector<ValuePtr> items(stack_.begin() + static_cast<ptrdiff_t>(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  Status Push(ValuePtr v) {
    stack_.push_back(std::move(v));
    return Status::Ok();
  }
  Status PushInt(int64_t i) {
    auto v = Make(Value::kInt);
    v->i = i;
    return Push(v);
  }
  Status PushString(std::string s) {
    auto v = Make(Value::kString);
    v->s = std::move(s);
    return Push(v);
  }
  Status PushTuple(std::vector<ValuePtr> items) {
    auto v = Make(Value::kTuple);
    v->items = std::move(items);
    return Push(v);
  }
  Status Memo(uint64_t index) {
    if (stack_.empty()) return Bad("memo of an empty stack");
    memo_[index] = stack_.back();
    return Status::Ok();
  }
  Status Get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) return Bad("memo " + std::to_string(index) + " is not set");
    return Push(it->second);
  }
  Status AddItems(const ValuePtr& target, std::vector<ValuePtr> items, bool pairs) {
    if (target->kind == Value::kOpaque) return Status::Ok();  // attributes of something we ignore
    if (target->kind != (pairs ? Value::kDict : Value::kList)) return Bad("items added to a non-container");
    if (pairs && items.size() % 2) return Bad("odd number of dict items");
    for (auto& v : items) target->items.push_back(std::move(v));
    return Status::Ok();
  }

  static Result<std::vector<int64_t>> Ints(const ValuePtr& v, const char* what) {
    if (v->kind != Value::kTuple && v->kind != Value::kList) return Bad(std::string(what) + " is not a tuple");
    std::vector<int64_t> out;
    for (const auto& x : v->items) {
      if (x->kind != Value::kInt) return Bad(std::string(what) + " holds a non-integer");
      out.push_back(x->i);
    }
    return out;
  }

  Result<ValuePtr> Reduce(const ValuePtr& fn, const ValuePtr& args) {
    if (fn->kind != Value::kGlobal || args->kind != Value::kTuple) return Make(Value::kOpaque);
    const std::string& name = fn->s;
    const auto& a = args->items;
    if (name == "collections.OrderedDict" || name == "builtins.dict") {
      auto d = Make(Value::kDict);
      if (!a.empty() && a[0]->kind == Value::kList) {
        for (const auto& pair : a[0]->items) {
          if (pair->kind != Value::kTuple || pair->items.size() != 2) return Bad("OrderedDict of non-pairs");
          d->items.push_back(pair->items[0]);
          d->items.push_back(pair->items[1]);
        }
      }
      return d;
    }
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      if (a.size() < 4 || a[0]->kind != Value::kStorage || a[1]->kind != Value::kInt) {
        return Bad("unexpected arguments to " + name);
      }
      auto t = Make(Value::kTensor);
      t->tensor.storage_key = a[0]->s;
      t->tensor.dtype = a[0]->dtype;
      t->tensor.storage_numel = a[0]->i;
      t->tensor.storage_offset = a[1]->i;
      GANTRY_ASSIGN_OR_RETURN(t->tensor.size, Ints(a[2], "tensor size"));
      GANTRY_ASSIGN_OR_RETURN(t->tensor.stride, Ints(a[3], "tensor stride"));
      return t;
    }
    if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
      if (a.empty() || a[0]->kind != Value::kTensor) return Bad("parameter without a tensor");
      return a[0];
    }
    return Make(Value::kOpaque);
  }

  Result<ValuePtr> PersistentLoad(const ValuePtr& pid) {
    // ('storage', torch.FloatStorage, '0', 'cpu', numel)
    if (pid->kind != Value::kTuple || pid->items.size() < 5 || pid->items[0]->s != "storage" ||
        pid->items[1]->kind != Value::kGlobal || pid->items[2]->kind != Value::kString ||
        pid->items[4]->kind != Value::kInt) {
      return Bad("unknown persistent id");
    }
    const std::string& cls = pid->items[1]->s;
    auto dtype = DTypeOfStorage(cls.substr(cls.rfind('.') + 1));
    if (!dtype) return Bad("storage type " + cls + " cannot be held in a checkpoint");
    auto s = Make(Value::kStorage);
    s->s = pid->items[2]->s;
    s->dtype = *dtype;
    s->i = pid->items[4]->i;
    return s;
  }

  Status Step(uint8_t op) {
    switch (op) {
      case 0x80: return Le(1).status();                     // PROTO
      case 0x95: return Le(8).status();                     // FRAME
      case '(': marks_.push_back(stack_.size()); return Status::Ok();
      case ')': return PushTuple({});
      case 't': {
        GANTRY_ASSIGN_OR_RETURN(auto items, PopToMark());
        return PushTuple(std::move(items));
      }
      case 0x85: case 0x86: case 0x87: {
        std::vector<ValuePtr> items(op - 0x84);
        for (size_t k = items.size(); k > 0; --k) {
          GANTRY_ASSIGN_OR_RETURN(items[k - 1], Pop());
        }
        return PushTuple(std::move(items));
      }
      case ']': return Push(Make(Value::kList));
      case '}': return Push(Make(Value::kDict));
      case 'a': {
        GANTRY_ASSIGN_OR_RETURN(auto v, Pop());
        GANTRY_ASSIGN_OR_RETURN(auto list, Pop());
        GANTRY_RETURN_IF_ERROR(AddItems(list, {v}, false));
        return Push(list);
      }
      case 'e': case 'u': {
        GANTRY_ASSIGN_OR_RETURN(auto items, PopToMark());
        if (stack_.empty()) return Bad("APPENDS/SETITEMS without a target");
        return AddItems(stack_.back(), std::move(items), op == 'u');
      }
      case 's': {
        GANTRY_ASSIGN_OR_RETURN(auto v, Pop());
        GANTRY_ASSIGN_OR_RETURN(auto k, Pop());
        if (stack_.empty()) return Bad("SETITEM without a dict");
        return AddItems(stack_.back(), {k, v}, true);
      }
      case 'N': return Push(Make(Value::kNone));
      case 0x88: case 0x89: {
        auto v = Make(Value::kBool);
        v->i = op == 0x88;
        return Push(v);
      }
      case 'J': {
        GANTRY_ASSIGN_OR_RETURN(uint64_t v, Le(4));
        return PushInt(static_cast<int32_t>(static_cast<uint32_t>(v)));
      }
      case 'K': {
        GANTRY_ASSIGN_OR_RETURN(uint64_t v, Le(1));
        return PushInt(static_cast<int64_t>(v));
      }
      case 'M': {
        GANTRY_ASSIGN_OR_RETURN(uint64_t v, Le(2));
        return PushInt(static_cast<int64_t>(v));
      }
      case 0x8a: {  // LONG1: n-byte little-endian two's complement
        GANTRY_ASSIGN_OR_RETURN(uint64_t n, Le(1));
        if (n > 8) return Bad("integer wider than 64 bits");
        if (n == 0) return PushInt(0);
        GANTRY_ASSIGN_OR_RETURN(uint64_t v, Le(static_cast<int>(n)));
        if (n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);
        return PushInt(static_cast<int64_t>(v));
      }
      case 'G': {
        GANTRY_RETURN_IF_ERROR(Bytes(8).status());
        return Push(Make(Value::kFloat));  // the value is never needed by a state dict
      }
      case 'X': case 'T': case 'B': {
        GANTRY_ASSIGN_OR_RETURN(uint64_t n, Le(4));
        GANTRY_ASSIGN_OR_RETURN(std::string s, Bytes(n));
        return PushString(std::move(s));
      }
      case 0x8c: case 'U': case 'C': {
        GANTRY_ASSIGN_OR_RETURN(uint64_t n, Le(1));
        GANTRY_ASSIGN_OR_RETURN(std::string s, Bytes(n));
        return PushString(std::move(s));
      }
      case 0x8d: case 0x8e: {
        GANTRY_ASSIGN_OR_RETURN(uint64_t n, Le(8));
        GANTRY_ASSIGN_OR_RETURN(std::string s, Bytes(n));
        return PushString(std::move(s));
      }
      case 'c': {
        GANTRY_ASSIGN_OR_RETURN(std::string module, Line());
        GANTRY_ASSIGN_OR_RETURN(std::string name, Line());
        auto g = Make(Value::kGlobal);
        g->s = module + "." + name;
        return Push(g);
      }
      case 0x93: {  // STACK_GLOBAL
        GANTRY_ASSIGN_OR_RETURN(auto name, Pop());
        GANTRY_ASSIGN_OR_RETURN(auto module, Pop());
        auto g = Make(Value::kGlobal);
        g->s = module->s + "." + name->s;
        return Push(g);
      }
      case 'q': {
        GANTRY_ASSIGN_OR_RETURN(uint64_t i, Le(1));
        return Memo(i);
      }
      case 'r': {
        GANTRY_ASSIGN_OR_RETURN(uint64_t i, Le(4));
        return Memo(i);
      }
      case 0x94: return Memo(memo_.size());
      case 'h': {
        GANTRY_ASSIGN_OR_RETURN(uint64_t i, Le(1));
        return Get(i);
      }
      case 'j': {
        GANTRY_ASSIGN_OR_RETURN(uint64_t i, Le(4));
        return Get(i);
      }
      case 'R': {
        GANTRY_ASSIGN_OR_RETURN(auto args, Pop());
        GANTRY_ASSIGN_OR_RETURN(auto fn, Pop());
        GANTRY_ASSIGN_OR_RETURN(auto v, Reduce(fn, args));
        return Push(v);
      }
      case 0x81: {  // NEWOBJ: an object we do not need
        GANTRY_RETURN_IF_ERROR(Pop().status());
        GANTRY_RETURN_IF_ERROR(Pop().status());
        return Push(Make(Value::kOpaque));
      }
      case 'b': return Pop().status();  // BUILD: attributes (OrderedDict._metadata) are ignored
      case 'Q': {
        GANTRY_ASSIGN_OR_RETURN(auto pid, Pop());
        GANTRY_ASSIGN_OR_RETURN(auto s, PersistentLoad(pid));
        return Push(s);
      }
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        return Bad(std::string("unsupported opcode ") + hex + " at byte " + std::to_string(pos_ - 1));
      }
    }
  }

  std::string_view in_;
  size_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, ValuePtr> memo_;
};

}  // namespace

std::optional<DType> DTypeOfStorage(std::string_view c) {
  static const std::map<std::string_view, DType> kMap = {
      {"FloatStorage", DType::kFloat32}, {"DoubleStorage", DType::kFloat64}, {"HalfStorage", DType::kFloat16},
      {"BFloat16Storage", DType::kBFloat16}, {"LongStorage", DType::kInt64}, {"IntStorage", DType::kInt32},
      {"ShortStorage", DType::kInt16},   {"CharStorage", DType::kInt8},      {"ByteStorage", DType::kUInt8},
      {"BoolStorage", DType::kBool}};
  auto it = kMap.find(c);
  if (it == kMap.end()) return std::nullopt;
  return it->second;
}

Result<std::vector<PickledTensor>> ReadStateDictPickle(std::string_view pickle) {
  Reader reader(pickle);
  GANTRY_ASSIGN_OR_RETURN(ValuePtr top, reader.Run());
  if (top->kind != Value::kDict) return Bad("the file holds something other than a dict");
  std::vector<PickledTensor> out;
  for (size_t i = 0; i + 1 < top->items.size(); i += 2) {
    const ValuePtr& k = top->items[i];
    const ValuePtr& v = top->items[i + 1];
    if (k->kind != Value::kString) return Bad("a key is not a string");
    if (v->kind != Value::kTensor) {
      return Bad("entry '" + k->s + "' is not a tensor (a whole training checkpoint rather than a state dict?)");
    }
    PickledTensor t = v->tensor;
    t.name = k->s;
    if (t.size.size() != t.stride.size()) return Bad("entry '" + t.name + "' has mismatched size and stride");
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace gantry::storage
