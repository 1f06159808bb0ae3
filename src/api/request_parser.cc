#include "api/request_parser.h"

#include <rapidjson/document.h>

#include <set>

#include "store/codec.h"
#include "util/json.h"
#include "util/peer_address.h"
#include "util/url.h"

namespace dist_counter {

Status CheckCounterName(std::string_view name) {
  return ValidateNewCounterName(name);
}

Status ParseCounterName(std::string_view segment, std::string* name) {
  std::string decoded;
  Status s = PercentDecode(segment, /*plus_is_space=*/false, &decoded);
  if (s.ok()) s = CheckCounterName(decoded);
  if (!s.ok()) return s;
  *name = std::move(decoded);
  return Status::OK();
}

Status ParseBatchBody(std::string_view body, CounterDeltas* deltas) {
  rapidjson::Document doc;
  Status s = ParseJson(body, kMaxJsonDepth, &doc);
  if (!s.ok()) return s;
  if (!doc.IsObject()) {
    return Status::InvalidArgument("batch body must be a JSON object");
  }
  CounterDeltas parsed;
  std::set<std::string> seen;
  for (const auto& member : doc.GetObject()) {
    std::string name(member.name.GetString(), member.name.GetStringLength());
    s = CheckCounterName(name);
    if (!s.ok()) return s;
    if (!member.value.IsInt64()) {
      return Status::InvalidArgument("delta of \"" + name +
                                     "\" is not a 64-bit integer");
    }
    if (!seen.insert(name).second) {
      return Status::InvalidArgument("counter \"" + name +
                                     "\" appears twice in the batch");
    }
    parsed.emplace_back(std::move(name), member.value.GetInt64());
  }
  *deltas = std::move(parsed);
  return Status::OK();
}

Status ParseConfigBody(std::string_view body, size_t max_peers,
                       std::vector<std::string>* peers) {
  rapidjson::Document doc;
  Status s = ParseJson(body, kMaxJsonDepth, &doc);
  if (!s.ok()) return s;
  if (!doc.IsObject()) {
    return Status::InvalidArgument("body must be a JSON object");
  }
  const auto actors = doc.FindMember("actors");
  if (actors == doc.MemberEnd() || !actors->value.IsArray()) {
    return Status::InvalidArgument("\"actors\" must be a list of strings");
  }
  // Parsers differ on which of two "actors" wins: refuse the ambiguity.
  for (auto it = actors + 1; it != doc.MemberEnd(); ++it) {
    if (it->name == "actors") {
      return Status::InvalidArgument("\"actors\" is given twice");
    }
  }
  std::vector<std::string> parsed;
  parsed.reserve(actors->value.Size());
  for (const auto& item : actors->value.GetArray()) {
    if (!item.IsString()) {
      return Status::InvalidArgument("\"actors\" must be a list of strings");
    }
    parsed.emplace_back(item.GetString(), item.GetStringLength());
  }
  s = CheckPeerList(parsed, max_peers);
  if (!s.ok()) return s;
  *peers = std::move(parsed);
  return Status::OK();
}

}  // namespace dist_counter
