#include "store/codec.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace dist_counter {

Status ValidateCounterName(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("empty counter name");
  if (name.size() > kMaxCounterNameBytes) {
    return Status::InvalidArgument("counter name longer than 200 bytes");
  }
  if (name.find('/') != std::string_view::npos) {
    return Status::InvalidArgument("counter name contains '/'");
  }
  if (name.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("counter name contains NUL");
  }
  return Status::OK();
}

std::string CounterKey(std::string_view name) {
  std::string key(kCounterPrefix);
  key.append(name);
  return key;
}

bool ParseCounterKey(std::string_view key, std::string* name) {
  if (key.substr(0, kCounterPrefix.size()) != kCounterPrefix) return false;
  name->assign(key.substr(kCounterPrefix.size()));
  return true;
}

std::string EncodeCounter(const PnCounter& counter) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  for (const auto& [actor, counts] : counter.actors()) {
    writer.Key(actor.data(), static_cast<rapidjson::SizeType>(actor.size()));
    writer.StartObject();
    writer.Key("p");
    writer.Uint64(counts.p);
    writer.Key("n");
    writer.Uint64(counts.n);
    writer.EndObject();
  }
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

namespace {

// Reads {"p":<uint64>,"n":<uint64>} and nothing else.
bool DecodeActorCounts(const rapidjson::Value& value, ActorCounts* counts) {
  if (!value.IsObject() || value.MemberCount() != 2) return false;
  auto p = value.FindMember("p");
  auto n = value.FindMember("n");
  if (p == value.MemberEnd() || n == value.MemberEnd()) return false;
  if (!p->value.IsUint64() || !n->value.IsUint64()) return false;
  counts->p = p->value.GetUint64();
  counts->n = n->value.GetUint64();
  return true;
}

}  // namespace

Status DecodeCounter(std::string_view json, PnCounter* counter) {
  // RapidJSON stops at a NUL as if the text ended there; a raw NUL is never
  // valid JSON, so refuse it rather than decode only what comes before it.
  if (json.find('\0') != std::string_view::npos) {
    return Status::Corruption("counter: NUL byte in JSON");
  }
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) return Status::Corruption("counter: bad JSON");
  if (!doc.IsObject()) return Status::Corruption("counter: not an object");
  PnCounter decoded;
  for (const auto& member : doc.GetObject()) {
    ActorCounts counts;
    if (!DecodeActorCounts(member.value, &counts)) {
      return Status::Corruption("counter: bad actor totals");
    }
    std::string actor(member.name.GetString(), member.name.GetStringLength());
    if (actor.empty()) return Status::Corruption("counter: empty actor id");
    decoded.SetActor(actor, counts);
  }
  *counter = std::move(decoded);
  return Status::OK();
}

std::string EncodeStringList(const std::vector<std::string>& list) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartArray();
  for (const std::string& item : list) {
    writer.String(item.data(), static_cast<rapidjson::SizeType>(item.size()));
  }
  writer.EndArray();
  return std::string(buffer.GetString(), buffer.GetSize());
}

Status DecodeStringList(std::string_view json, std::vector<std::string>* list) {
  if (json.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("NUL byte in JSON");
  }
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) return Status::InvalidArgument("bad JSON");
  if (!doc.IsArray()) return Status::InvalidArgument("not a JSON array");
  std::vector<std::string> decoded;
  for (const auto& item : doc.GetArray()) {
    if (!item.IsString()) return Status::InvalidArgument("not a string");
    decoded.emplace_back(item.GetString(), item.GetStringLength());
  }
  *list = std::move(decoded);
  return Status::OK();
}

}  // namespace dist_counter
