#include "common/protocol.h"

#include <vector>

namespace gantry {
namespace {

// Reads a big-endian unsigned integer of `n` bytes at `p`.
uint64_t ReadBe(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

Status ValidateMsgpack(std::string_view bytes, int max_depth) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t pos = 0;
  // Each entry: how many more values the open container expects.
  std::vector<uint64_t> pending;
  pending.push_back(1);
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("malformed message at byte " + std::to_string(pos) + ": " + why);
  };
  auto need = [&](uint64_t k) { return k <= n - pos; };
  while (!pending.empty()) {
    if (pending.back() == 0) {
      pending.pop_back();
      continue;
    }
    --pending.back();
    if (pos >= n) return bad("truncated");
    unsigned char t = p[pos++];
    uint64_t skip = 0;       // payload bytes to skip
    uint64_t children = 0;   // values inside a container
    bool container = false;
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
      // fixint, negative fixint, nil, false, true
    } else if (t >= 0x80 && t <= 0x8f) {
      container = true, children = 2ull * (t & 0x0f);
    } else if (t >= 0x90 && t <= 0x9f) {
      container = true, children = t & 0x0f;
    } else if (t >= 0xa0 && t <= 0xbf) {
      skip = t & 0x1f;
    } else {
      int len_bytes = 0;
      switch (t) {
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xca: case 0xce: case 0xd2: skip = 4; break;
        case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
        case 0xd4: skip = 2; break;   // fixext 1
        case 0xd5: skip = 3; break;
        case 0xd6: skip = 5; break;
        case 0xd7: skip = 9; break;
        case 0xd8: skip = 17; break;
        case 0xc4: case 0xd9: len_bytes = 1; break;  // bin8, str8
        case 0xc5: case 0xda: len_bytes = 2; break;
        case 0xc6: case 0xdb: len_bytes = 4; break;
        case 0xc7: len_bytes = 1; break;  // ext8 (+1 type byte)
        case 0xc8: len_bytes = 2; break;
        case 0xc9: len_bytes = 4; break;
        case 0xdc: case 0xde: len_bytes = 2; container = true; break;
        case 0xdd: case 0xdf: len_bytes = 4; container = true; break;
        default: return bad("unknown type byte");
      }
      if (len_bytes) {
        if (!need(len_bytes)) return bad("truncated length");
        uint64_t len = ReadBe(p + pos, len_bytes);
        pos += len_bytes;
        if (container) {
          children = (t == 0xde || t == 0xdf) ? 2 * len : len;
        } else {
          skip = len + ((t >= 0xc7 && t <= 0xc9) ? 1 : 0);
        }
      }
    }
    if (container) {
      // Every value takes at least one byte: a count larger than what is
      // left cannot be honest, and must not drive an allocation.
      if (children > n - pos) return bad("container length exceeds message");
      if (static_cast<int>(pending.size()) >= max_depth) return bad("nesting too deep");
      pending.push_back(children);
    } else {
      if (!need(skip)) return bad("truncated value");
      pos += skip;
    }
  }
  if (pos != n) return bad("trailing bytes");
  return Status::Ok();
}

Result<json> ParseMsgpack(std::string_view bytes) {
  GANTRY_RETURN_IF_ERROR(ValidateMsgpack(bytes));
  try {
    return json::from_msgpack(bytes.begin(), bytes.end());
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("malformed message: ") + e.what());
  }
}

std::string ToMsgpack(const json& j) {
  std::string out;
  json::to_msgpack(j, out);
  return out;
}

std::string EncodeRequest(const Request& req) {
  json j = {{"v", kProtocolVersion}, {"type", req.type}, {"id", req.id}, {"body", req.body}};
  if (!req.auth.empty()) j["auth"] = req.auth;
  return ToMsgpack(j);
}

Result<Request> DecodeRequest(std::string_view bytes) {
  GANTRY_ASSIGN_OR_RETURN(json j, ParseMsgpack(bytes));
  if (!j.is_object()) return Status::InvalidArgument("request must be a map");
  GANTRY_ASSIGN_OR_RETURN(int64_t v, GetInt(j, "v"));
  if (v != kProtocolVersion) {
    return Status::InvalidArgument("protocol version " + std::to_string(v) +
                                   " not supported (this service speaks " +
                                   std::to_string(kProtocolVersion) + ")");
  }
  Request req;
  GANTRY_ASSIGN_OR_RETURN(req.type, GetString(j, "type"));
  GANTRY_ASSIGN_OR_RETURN(req.id, GetString(j, "id", ""));
  GANTRY_ASSIGN_OR_RETURN(req.auth, GetString(j, "auth", ""));
  auto it = j.find("body");
  if (it != j.end() && !it->is_null()) {
    if (!it->is_object()) return Status::InvalidArgument("field 'body' must be a map");
    req.body = std::move(*it);
  }
  return req;
}

std::string EncodeReply(const Reply& rep) {
  json j = {{"v", kProtocolVersion}, {"id", rep.id}, {"ok", rep.status.ok()}};
  if (rep.status.ok()) {
    j["body"] = rep.body;
  } else {
    j["error"] = {{"code", StatusCodeName(rep.status.code())}, {"message", rep.status.message()}};
  }
  return ToMsgpack(j);
}

Result<Reply> DecodeReply(std::string_view bytes) {
  GANTRY_ASSIGN_OR_RETURN(json j, ParseMsgpack(bytes));
  if (!j.is_object()) return Status::InvalidArgument("reply must be a map");
  Reply rep;
  GANTRY_ASSIGN_OR_RETURN(rep.id, GetString(j, "id", ""));
  auto ok = j.find("ok");
  if (ok == j.end() || !ok->is_boolean()) return Status::InvalidArgument("reply lacks 'ok'");
  if (ok->get<bool>()) {
    auto b = j.find("body");
    if (b != j.end() && !b->is_null()) rep.body = std::move(*b);
    return rep;
  }
  auto e = j.find("error");
  if (e == j.end() || !e->is_object()) return Status::InvalidArgument("error reply lacks 'error'");
  GANTRY_ASSIGN_OR_RETURN(std::string code, GetString(*e, "code"));
  GANTRY_ASSIGN_OR_RETURN(std::string message, GetString(*e, "message", ""));
  StatusCode c = StatusCodeFromName(code);
  if (c == StatusCode::kOk) c = StatusCode::kInternal;
  rep.status = Status(c, message);
  return rep;
}

Result<std::string> GetString(const json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end()) return Status::InvalidArgument("field '" + std::string(key) + "' is required");
  if (!it->is_string()) return Status::InvalidArgument("field '" + std::string(key) + "' must be a string");
  return it->get<std::string>();
}

Result<std::string> GetString(const json& obj, std::string_view key, std::string fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  return GetString(obj, key);
}

Result<int64_t> GetInt(const json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end()) return Status::InvalidArgument("field '" + std::string(key) + "' is required");
  if (!it->is_number_integer()) {
    return Status::InvalidArgument("field '" + std::string(key) + "' must be an integer");
  }
  return it->get<int64_t>();
}

Result<int64_t> GetInt(const json& obj, std::string_view key, int64_t fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  return GetInt(obj, key);
}

Result<double> GetNumber(const json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end()) return Status::InvalidArgument("field '" + std::string(key) + "' is required");
  if (!it->is_number()) return Status::InvalidArgument("field '" + std::string(key) + "' must be a number");
  return it->get<double>();
}

}  // namespace gantry
