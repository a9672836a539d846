// Gantry's wire protocol (docs/protocol.md has every message).
//
// A request is one ZeroMQ frame holding a MessagePack map
//   {v: 1, type: "<message type>", id: "<request id>", auth: "<token>"?, body: {...}}
// and its reply is
//   {v: 1, id, ok: true, body: {...}}  or  {v: 1, id, ok: false, error: {code, message}}.
// MessagePack is produced and read with nlohmann::json, so one schema serves
// the binary wire and the CLI's --json output.
//
// Decoding is defensive: the bytes are first walked without recursion to
// bound nesting depth and declared lengths, then parsed; any failure is an
// invalid_argument Status, never an exception or a crash.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace gantry {

using json = nlohmann::json;

inline constexpr int kProtocolVersion = 1;
// Largest nesting of maps/arrays a message may have.
inline constexpr int kMaxMessageDepth = 32;
// Default largest request a service accepts; ZeroMQ drops bigger frames at
// the socket (ZMQ_MAXMSGSIZE) before they are read into memory.
inline constexpr int64_t kDefaultMaxMessageBytes = 4 << 20;

struct Request {
  std::string type;
  std::string id;
  std::string auth;  // empty when absent
  json body = json::object();
};

struct Reply {
  std::string id;
  Status status;               // ok, or the error carried by the reply
  json body = json::object();  // meaningful when status is ok
};

std::string EncodeRequest(const Request& req);
Result<Request> DecodeRequest(std::string_view bytes);
std::string EncodeReply(const Reply& rep);
Result<Reply> DecodeReply(std::string_view bytes);

// Checks that `bytes` is exactly one well-formed MessagePack value with
// nesting at most `max_depth` and lengths that fit in the buffer. Iterative.
Status ValidateMsgpack(std::string_view bytes, int max_depth = kMaxMessageDepth);
// ValidateMsgpack, then nlohmann's parser; exceptions become Status.
Result<json> ParseMsgpack(std::string_view bytes);
std::string ToMsgpack(const json& j);

// Typed access to request bodies with errors that name the field:
//   GANTRY_ASSIGN_OR_RETURN(std::string model, GetString(body, "model"));
Result<std::string> GetString(const json& obj, std::string_view key);
Result<int64_t> GetInt(const json& obj, std::string_view key);
Result<double> GetNumber(const json& obj, std::string_view key);
// Optional variants return `fallback` when the key is absent or null.
Result<std::string> GetString(const json& obj, std::string_view key, std::string fallback);
Result<int64_t> GetInt(const json& obj, std::string_view key, int64_t fallback);

}  // namespace gantry
