#include "proto/wire.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <utility>

#include "store/codec.h"
#include "store/counter_json.h"
#include "util/url.h"

namespace dist_counter {

namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Iterative parsing: a deeply nested reply cannot overflow the stack.
constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag;

void WriteString(JsonWriter* w, const std::string& s) {
  w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void WriteState(JsonWriter* w, const PnCounter& state) {
  const std::string json = EncodeCounter(state);
  w->RawValue(json.data(), json.size(), rapidjson::kObjectType);
}

void WriteIdentity(JsonWriter* w, const PeerIdentity& node) {
  w->Key("node");
  w->StartObject();
  w->Key("challenge_id");
  WriteString(w, node.challenge_id);
  w->Key("node_id");
  WriteString(w, node.node_id);
  w->Key("actor");
  WriteString(w, node.actor);
  w->EndObject();
}

std::string Finish(const rapidjson::StringBuffer& buffer) {
  return std::string(buffer.GetString(), buffer.GetSize());
}

bool GetString(const rapidjson::Value& object, const char* key,
               size_t max_bytes, std::string* out) {
  auto it = object.FindMember(key);
  if (it == object.MemberEnd() || !it->value.IsString()) return false;
  const size_t size = it->value.GetStringLength();
  if (size == 0 || size > max_bytes) return false;
  out->assign(it->value.GetString(), size);
  return true;
}

bool GetUint64(const rapidjson::Value& object, const char* key, uint64_t* out) {
  auto it = object.FindMember(key);
  if (it == object.MemberEnd() || !it->value.IsUint64()) return false;
  *out = it->value.GetUint64();
  return true;
}

bool GetBool(const rapidjson::Value& object, const char* key, bool* out) {
  auto it = object.FindMember(key);
  if (it == object.MemberEnd() || !it->value.IsBool()) return false;
  *out = it->value.GetBool();
  return true;
}

// Reads the reply's "node" object.
Status DecodeIdentity(const rapidjson::Value& reply, PeerIdentity* node) {
  auto it = reply.FindMember("node");
  if (it == reply.MemberEnd() || !it->value.IsObject()) {
    return Status::Corruption("reply has no \"node\" object");
  }
  const rapidjson::Value& v = it->value;
  PeerIdentity parsed;
  if (!GetString(v, "challenge_id", kMaxIdBytes, &parsed.challenge_id) ||
      !GetString(v, "node_id", kMaxIdBytes, &parsed.node_id) ||
      !GetString(v, "actor", kMaxIdBytes, &parsed.actor)) {
    return Status::Corruption("reply has a malformed \"node\" object");
  }
  *node = std::move(parsed);
  return Status::OK();
}

Status DecodeName(const rapidjson::Value& object, std::string* name) {
  auto it = object.FindMember("name");
  if (it == object.MemberEnd() || !it->value.IsString()) {
    return Status::Corruption("counter without a name");
  }
  std::string parsed(it->value.GetString(), it->value.GetStringLength());
  if (!ValidateCounterName(parsed).ok()) {
    return Status::Corruption("invalid counter name");
  }
  *name = std::move(parsed);
  return Status::OK();
}

// Decodes object["state"]. A state beyond `limits` is not Corruption: it
// returns OK with *reason set ("" when within the limits) and *actors and
// *bytes saying how large it is; *state is then unspecified.
Status DecodeStateMember(const rapidjson::Value& object,
                         const WireLimits& limits, PnCounter* state,
                         std::string* reason, size_t* actors, size_t* bytes) {
  reason->clear();
  *bytes = 0;
  auto it = object.FindMember("state");
  if (it == object.MemberEnd()) {
    return Status::Corruption("counter without a state");
  }
  const rapidjson::Value& value = it->value;
  *actors = value.IsObject() ? value.MemberCount() : 0;
  if (*actors > limits.max_actors_per_counter) {
    *reason = "too_many_actors";
    return Status::OK();
  }
  Status s = DecodeCounterValue(value, state);
  if (!s.ok()) return s;
  for (const auto& [actor, counts] : state->actors()) {
    if (actor.size() > kMaxIdBytes) {
      return Status::Corruption("state has an actor id over " +
                                std::to_string(kMaxIdBytes) + " bytes");
    }
  }
  *bytes = EncodedCounterBytes(*state);
  if (*bytes > limits.max_counter_bytes) *reason = "too_large";
  return Status::OK();
}

Status ParseDocument(std::string_view body, rapidjson::Document* doc) {
  doc->Parse<kParseFlags>(body.data(), body.size());
  if (doc->HasParseError()) return Status::Corruption("reply is not JSON");
  if (!doc->IsObject()) return Status::Corruption("reply is not an object");
  return Status::OK();
}

// Decodes one element of a page's "counters" into *page.
Status DecodeChange(const rapidjson::Value& item, const WireLimits& limits,
                    ChangesPage* page) {
  if (!item.IsObject()) return Status::Corruption("counter is not an object");
  CounterChange change;
  Status s = DecodeName(item, &change.name);
  if (!s.ok()) return s;
  auto omitted = item.FindMember("omitted");
  if (omitted != item.MemberEnd()) {
    if (!omitted->value.IsUint64() || item.MemberCount() != 2) {
      return Status::Corruption("malformed omitted counter");
    }
    page->rejected.push_back(
        RejectedCounter{std::move(change.name), "too_large", 0,
                        static_cast<size_t>(omitted->value.GetUint64())});
    return Status::OK();
  }
  std::string reason;
  size_t actors = 0, bytes = 0;
  s = DecodeStateMember(item, limits, &change.state, &reason, &actors, &bytes);
  if (!s.ok()) return s;
  if (!reason.empty()) {
    page->rejected.push_back(
        RejectedCounter{std::move(change.name), reason, actors, bytes});
    return Status::OK();
  }
  change.bytes = bytes;
  page->counters.push_back(std::move(change));
  return Status::OK();
}

}  // namespace

std::string ChangesTarget(const ChangesCursor& cursor, size_t limit,
                          size_t max_bytes) {
  return "/internal/changes?instance=" + std::to_string(cursor.instance) +
         "&since=" + std::to_string(cursor.since) +
         "&limit=" + std::to_string(limit) +
         "&max_bytes=" + std::to_string(max_bytes);
}

std::string CounterTarget(const std::string& name) {
  return "/internal/counter/" + PercentEncode(name);
}

size_t ServedPageBytes(uint64_t requested) {
  if (requested == 0) return kDefaultPageBytes;
  return static_cast<size_t>(std::min<uint64_t>(requested, kMaxPageBytes));
}

std::string EncodeChangesPage(const PeerIdentity& node, bool reset,
                              uint64_t next, bool more,
                              const std::vector<CounterChange>& changes) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  WriteIdentity(&w, node);
  w.Key("instance");
  w.Uint64(node.instance);
  w.Key("reset");
  w.Bool(reset);
  w.Key("next");
  w.Uint64(next);
  w.Key("more");
  w.Bool(more);
  w.Key("counters");
  w.StartArray();
  for (const CounterChange& change : changes) {
    w.StartObject();
    w.Key("name");
    WriteString(&w, change.name);
    if (change.omitted) {
      w.Key("omitted");
      w.Uint64(change.bytes);
    } else {
      w.Key("state");
      WriteState(&w, change.state);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return Finish(buffer);
}

std::string EncodeCounterReply(const PeerIdentity& node,
                               const std::string& name, const PnCounter& state,
                               bool found) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  WriteIdentity(&w, node);
  w.Key("name");
  WriteString(&w, name);
  w.Key("state");
  WriteState(&w, state);
  if (!found) {
    w.Key("found");
    w.Bool(false);
  }
  w.EndObject();
  return Finish(buffer);
}

Status DecodeChangesPage(std::string_view body, const ChangesCursor& cursor,
                         size_t limit, const WireLimits& limits,
                         ChangesPage* page) {
  rapidjson::Document doc;
  Status s = ParseDocument(body, &doc);
  if (!s.ok()) return s;
  ChangesPage parsed;
  s = DecodeIdentity(doc, &parsed.node);
  if (!s.ok()) return s;
  uint64_t instance = 0;
  if (!GetUint64(doc, "instance", &instance) ||
      !GetBool(doc, "reset", &parsed.reset) ||
      !GetUint64(doc, "next", &parsed.next.since) ||
      !GetBool(doc, "more", &parsed.more)) {
    return Status::Corruption("changes reply lacks instance/reset/next/more");
  }
  if (instance == 0) return Status::Corruption("changes reply has instance 0");
  parsed.node.instance = instance;
  parsed.next.instance = instance;
  const uint64_t since = parsed.reset ? 0 : cursor.since;
  if (!parsed.reset && instance != cursor.instance) {
    return Status::Corruption("changes reply continues another instance");
  }
  if (parsed.next.since < since) {
    return Status::Corruption("changes reply moves the cursor backwards");
  }
  auto counters = doc.FindMember("counters");
  if (counters == doc.MemberEnd() || !counters->value.IsArray()) {
    return Status::Corruption("changes reply has no counters array");
  }
  const auto& array = counters->value.GetArray();
  if (array.Size() > limit) {
    return Status::Corruption("changes reply holds more counters than asked");
  }
  if (parsed.more && (array.Empty() || parsed.next.since == since)) {
    return Status::Corruption("changes reply says more but makes no progress");
  }
  parsed.counters.reserve(array.Size());
  for (const auto& item : array) {
    s = DecodeChange(item, limits, &parsed);
    if (!s.ok()) return s;
  }
  *page = std::move(parsed);
  return Status::OK();
}

Status DecodeCounterReply(std::string_view body, const std::string& name,
                          const WireLimits& limits, PeerIdentity* node,
                          PnCounter* state, bool* found) {
  rapidjson::Document doc;
  Status s = ParseDocument(body, &doc);
  if (!s.ok()) return s;
  PeerIdentity parsed_node;
  s = DecodeIdentity(doc, &parsed_node);
  if (!s.ok()) return s;
  std::string parsed_name;
  s = DecodeName(doc, &parsed_name);
  if (!s.ok()) return s;
  if (parsed_name != name) {
    return Status::Corruption("counter reply names another counter");
  }
  bool parsed_found = true;
  if (doc.HasMember("found") && !GetBool(doc, "found", &parsed_found)) {
    return Status::Corruption("counter reply has a malformed \"found\"");
  }
  PnCounter parsed_state;
  std::string reason;
  size_t actors = 0, bytes = 0;
  s = DecodeStateMember(doc, limits, &parsed_state, &reason, &actors, &bytes);
  if (!s.ok()) return s;
  if (!reason.empty()) {
    return Status::Corruption("counter " + name + " exceeds our bounds (" +
                              reason + ": " + std::to_string(actors) +
                              " actors, " + std::to_string(bytes) + " bytes)");
  }
  if (!parsed_found && !parsed_state.empty()) {
    return Status::Corruption("counter reply has a state but found=false");
  }
  *node = std::move(parsed_node);
  *state = std::move(parsed_state);
  if (found != nullptr) *found = parsed_found;
  return Status::OK();
}

}  // namespace dist_counter
