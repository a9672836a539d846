#include "common/protocol.h"

#include "common/msgpack.h"

namespace gantry {

Status ValidateMsgpack(std::string_view bytes, int max_depth) { return msgpack::Validate(bytes, max_depth); }

Result<json> ParseMsgpack(std::string_view bytes) { return msgpack::Parse(bytes, kMaxMessageDepth); }

std::string ToMsgpack(const json& j) { return msgpack::Encode(j); }

std::string EncodeRequest(const Request& req) { return EncodeRequest(req.type, req.id, req.auth, req.body); }

std::string EncodeRequest(std::string_view type, std::string_view id, std::string_view auth, const json& body) {
  // The envelope is written field by field around the body, never assembled
  // as a json (that would copy the body). Keys in sorted order, as nlohmann
  // writes a json map, so the bytes are those of ToMsgpack(envelope).
  return msgpack::Write([&](auto& w) {
    w.MapHeader(auth.empty() ? 4 : 5);
    if (!auth.empty()) {
      w.String("auth");
      w.String(auth);
    }
    w.String("body");
    w.Value(body);
    w.String("id");
    w.String(id);
    w.String("type");
    w.String(type);
    w.String("v");
    w.Int(kProtocolVersion);
  });
}

Result<Request> DecodeRequest(std::string_view bytes) { return DecodeRequest(bytes, nullptr); }

Result<Request> DecodeRequest(std::string_view bytes, std::string* id) {
  GANTRY_ASSIGN_OR_RETURN(json j, ParseMsgpack(bytes));
  if (!j.is_object()) return Status::InvalidArgument("request must be a map");
  Request req;
  // The id first: every later error can then be addressed to it.
  GANTRY_ASSIGN_OR_RETURN(req.id, GetString(j, "id", ""));
  if (id != nullptr) *id = req.id;
  GANTRY_ASSIGN_OR_RETURN(int64_t v, GetInt(j, "v"));
  if (v != kProtocolVersion) {
    return Status::InvalidArgument("protocol version " + std::to_string(v) +
                                   " not supported (this service speaks " +
                                   std::to_string(kProtocolVersion) + ")");
  }
  GANTRY_ASSIGN_OR_RETURN(req.type, GetString(j, "type"));
  GANTRY_ASSIGN_OR_RETURN(req.auth, GetString(j, "auth", ""));
  auto it = j.find("body");
  if (it != j.end() && !it->is_null()) {
    if (!it->is_object()) return Status::InvalidArgument("field 'body' must be a map");
    req.body = std::move(*it);
  }
  return req;
}

std::string EncodeReply(const Reply& rep) {
  // As EncodeRequest: {body | error, id, ok, v} in sorted key order.
  const bool ok = rep.status.ok();
  return msgpack::Write([&](auto& w) {
    w.MapHeader(4);
    if (ok) {
      w.String("body");
      w.Value(rep.body);
    } else {
      w.String("error");
      w.MapHeader(2);
      w.String("code");
      w.String(StatusCodeName(rep.status.code()));
      w.String("message");
      w.String(rep.status.message());
    }
    w.String("id");
    w.String(rep.id);
    w.String("ok");
    w.Bool(ok);
    w.String("v");
    w.Int(kProtocolVersion);
  });
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
