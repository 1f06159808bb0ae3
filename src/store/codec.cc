#include "store/codec.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "store/counter_json.h"
#include "util/json.h"
#include "util/utf8.h"

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

Status ValidateNewCounterName(std::string_view name) {
  Status s = ValidateCounterName(name);
  if (!s.ok()) return s;
  if (!IsValidUtf8(name)) {
    return Status::InvalidArgument("counter name is not valid UTF-8");
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
    // Only a reset adds baselines: a state without them is written exactly
    // as older versions wrote it, so they read it.
    if (counts.HasBaseline()) {
      writer.Key("bp");
      writer.Uint64(counts.bp);
      writer.Key("bn");
      writer.Uint64(counts.bn);
    }
    writer.EndObject();
  }
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

namespace {

// Reads object[key], an unsigned 64-bit integer, into *out.
bool GetTotal(const rapidjson::Value& object, const char* key, uint64_t* out) {
  auto it = object.FindMember(key);
  if (it == object.MemberEnd() || !it->value.IsUint64()) return false;
  *out = it->value.GetUint64();
  return true;
}

// Reads {"p":<uint64>,"n":<uint64>}, or that with "bp" and "bn" (both, and
// within p and n), and nothing else.
bool DecodeActorCounts(const rapidjson::Value& value, ActorCounts* counts) {
  if (!value.IsObject()) return false;
  const rapidjson::SizeType members = value.MemberCount();
  if (members != 2 && members != 4) return false;
  ActorCounts decoded;
  if (!GetTotal(value, "p", &decoded.p) || !GetTotal(value, "n", &decoded.n)) {
    return false;
  }
  if (members == 4 && (!GetTotal(value, "bp", &decoded.bp) ||
                       !GetTotal(value, "bn", &decoded.bn))) {
    return false;
  }
  *counts = decoded;
  return true;
}

// Decimal digits of `value`.
size_t Digits(uint64_t value) {
  size_t digits = 1;
  while (value >= 10) {
    value /= 10;
    ++digits;
  }
  return digits;
}

// Bytes of `text` as a JSON string written by RapidJSON, quotes included.
size_t JsonStringBytes(const std::string& text) {
  size_t bytes = 2;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' ||
        c == '\r' || c == '\t') {
      bytes += 2;
    } else if (u < 0x20) {
      bytes += 6;  // \u00XX
    } else {
      bytes += 1;
    }
  }
  return bytes;
}

}  // namespace

size_t EncodedCounterBytes(const PnCounter& counter) {
  size_t bytes = 2;  // {}
  for (const auto& [actor, counts] : counter.actors()) {
    // "actor":{"p":P,"n":N}, and a comma before every actor but the first.
    bytes += JsonStringBytes(actor) + 12 + Digits(counts.p) + Digits(counts.n);
    // ,"bp":BP,"bn":BN
    if (counts.HasBaseline()) {
      bytes += 12 + Digits(counts.bp) + Digits(counts.bn);
    }
  }
  if (counter.actors().size() > 1) bytes += counter.actors().size() - 1;
  return bytes;
}

Status DecodeCounterValue(const rapidjson::Value& value, PnCounter* counter) {
  if (!value.IsObject()) return Status::Corruption("counter: not an object");
  PnCounter decoded;
  for (const auto& member : value.GetObject()) {
    std::string actor(member.name.GetString(), member.name.GetStringLength());
    if (actor.empty()) return Status::Corruption("counter: empty actor id");
    ActorCounts counts;
    if (!DecodeActorCounts(member.value, &counts)) {
      return Status::Corruption("counter: bad totals for actor " + actor);
    }
    if (!counts.Consistent()) {
      return Status::Corruption(
          "counter: baseline above the totals for actor " + actor);
    }
    if (decoded.actors().count(actor) != 0) {
      return Status::Corruption("counter: actor " + actor + " given twice");
    }
    decoded.SetActor(actor, counts);
  }
  *counter = std::move(decoded);
  return Status::OK();
}

Status DecodeCounter(std::string_view json, PnCounter* counter) {
  rapidjson::Document doc;
  Status s = ParseJsonAnyStrings(json, kMaxJsonDepth, &doc);
  if (!s.ok()) return Status::Corruption("counter: " + s.message());
  return DecodeCounterValue(doc, counter);
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
  rapidjson::Document doc;
  Status s = ParseJsonAnyStrings(json, kMaxJsonDepth, &doc);
  if (!s.ok()) return s;
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
