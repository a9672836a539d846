// Gantry's wire protocol (docs/protocol.md has every message).
//
// A request is one ZeroMQ frame holding a MessagePack map
//   {v: 1, type: "<message type>", id: "<request id>", auth: "<token>"?, body: {...}}
// and its reply is
//   {v: 1, id, ok: true, body: {...}}  or  {v: 1, id, ok: false, error: {code, message}}.
// Messages are nlohmann::json values, so one schema serves the binary wire
// and the CLI's --json output; the MessagePack codec is Gantry's own
// (common/msgpack.h), byte-compatible with nlohmann's to/from_msgpack but
// built for bodies of ~100 MB of tensor bytes: the envelope is written around
// the body without copying it, the output is sized once, and binaries are
// copied in and out with one memcpy each.
//
// Decoding is defensive: one pass without recursion checks every type byte,
// declared length and the nesting depth before reading or allocating; any
// failure is an invalid_argument Status, never an exception or a crash.
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
// The storage service's default limit (its --max-message-mb): checkpoints,
// exports and imports travel in one message, so this bounds the biggest
// model. Clients must not assume it: the running limit of any service is in
// its ping reply and run file as `max_message_bytes` (common/service.h).
inline constexpr int64_t kDefaultStorageMaxMessageBytes = int64_t{512} << 20;

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
// The same bytes without a Request: callers that hold the body elsewhere
// need not copy it into one.
std::string EncodeRequest(std::string_view type, std::string_view id, std::string_view auth, const json& body);
Result<Request> DecodeRequest(std::string_view bytes);
// As above; also sets `*id` as soon as the envelope's string `id` has been
// read, so an error reply to a request that fails later (wrong `v`, missing
// `type`, bad `body`) can echo it. `*id` stays empty when the bytes are not
// a map or `id` is absent or not a string.
Result<Request> DecodeRequest(std::string_view bytes, std::string* id);
std::string EncodeReply(const Reply& rep);
Result<Reply> DecodeReply(std::string_view bytes);

// Checks that `bytes` is exactly one well-formed MessagePack value with
// nesting at most `max_depth` and lengths that fit in the buffer. Iterative.
Status ValidateMsgpack(std::string_view bytes, int max_depth = kMaxMessageDepth);
// ValidateMsgpack's checks (depth kMaxMessageDepth), map keys must be
// strings, and the json built in the same pass (msgpack::Parse).
Result<json> ParseMsgpack(std::string_view bytes);
// Smallest encodings, as nlohmann::json::to_msgpack writes them (msgpack::Encode).
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
