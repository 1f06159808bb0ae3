#include "proto/wire.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <utility>

#include "store/codec.h"
#include "store/counter_json.h"
#include "util/json.h"
#include "util/url.h"
#include "util/utf8.h"

namespace dist_counter {

namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteString(JsonWriter* w, const std::string& s) {
  w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// Writes `state` without the actors whose ids are not UTF-8 (older
// versions took such ids from peers; JSON cannot carry them as they are).
void WriteState(JsonWriter* w, const PnCounter& state) {
  bool all_utf8 = true;
  for (const auto& [actor, counts] : state.actors()) {
    all_utf8 = all_utf8 && IsValidUtf8(actor);
  }
  std::string json;
  if (all_utf8) {
    json = EncodeCounter(state);
  } else {
    PnCounter sendable;
    for (const auto& [actor, counts] : state.actors()) {
      if (IsValidUtf8(actor)) sendable.SetActor(actor, counts);
    }
    json = EncodeCounter(sendable);
  }
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

// Reads object["name"] into *name. Returns "" if it is a name we may take
// (ValidateNewCounterName), else the reject reason "bad_name" with *detail
// saying why; *name then holds what was sent (or "").
std::string DecodeName(const rapidjson::Value& object, std::string* name,
                       std::string* detail) {
  name->clear();
  auto it = object.FindMember("name");
  if (it == object.MemberEnd() || !it->value.IsString()) {
    *detail = "no name";
    return "bad_name";
  }
  name->assign(it->value.GetString(), it->value.GetStringLength());
  Status s = ValidateNewCounterName(*name);
  if (!s.ok()) {
    *detail = s.message();
    return "bad_name";
  }
  return "";
}

// Returns "" if `actor` is an actor id we may take from a peer; otherwise
// why not.
std::string CheckActorId(const std::string& actor) {
  if (actor.size() > kMaxIdBytes) {
    return "an actor id over " + std::to_string(kMaxIdBytes) + " bytes";
  }
  if (actor.find('\0') != std::string::npos) return "an actor id with NUL";
  if (!IsValidUtf8(actor)) return "an actor id that is not UTF-8";
  return "";
}

// Decodes object["state"] into *state. Returns "" if it is a valid state
// within `limits`; otherwise the reject reason (too_many_actors, too_large,
// bad_actor or bad_state) with *detail saying more. *actors and *bytes say
// how large the state is (as far as known). *state is unspecified unless
// "" is returned.
std::string DecodeStateMember(const rapidjson::Value& object,
                              const WireLimits& limits, PnCounter* state,
                              std::string* detail, size_t* actors,
                              size_t* bytes) {
  *actors = 0;
  *bytes = 0;
  auto it = object.FindMember("state");
  if (it == object.MemberEnd()) {
    *detail = "no state";
    return "bad_state";
  }
  const rapidjson::Value& value = it->value;
  *actors = value.IsObject() ? value.MemberCount() : 0;
  if (*actors > limits.max_actors_per_counter) {
    *detail = std::to_string(*actors) + " actors";
    return "too_many_actors";
  }
  Status s = DecodeCounterValue(value, state);
  if (!s.ok()) {
    *detail = s.message();
    return "bad_state";
  }
  for (const auto& [actor, counts] : state->actors()) {
    const std::string problem = CheckActorId(actor);
    if (!problem.empty()) {
      *detail = "state has " + problem;
      return "bad_actor";
    }
  }
  *bytes = EncodedCounterBytes(*state);
  if (*bytes > limits.max_counter_bytes) {
    *detail = std::to_string(*actors) + " actors, " + std::to_string(*bytes) +
              " bytes";
    return "too_large";
  }
  return "";
}

Status ParseDocument(std::string_view body, rapidjson::Document* doc) {
  // Strings are judged where they are used: a bad name or actor id refuses
  // its counter, not the page.
  Status s = ParseJsonAnyStrings(body, kMaxWireJsonDepth, doc);
  if (!s.ok()) return Status::Corruption("reply is not JSON: " + s.message());
  if (!doc->IsObject()) return Status::Corruption("reply is not an object");
  return Status::OK();
}

// Decodes one element of a page's "counters" into *page: into
// page->counters if we take it, else into page->rejected. Never fails: a
// problem of one counter is that counter's alone.
void DecodeChange(const rapidjson::Value& item, const WireLimits& limits,
                  ChangesPage* page) {
  RejectedCounter rejected;
  if (!item.IsObject()) {
    rejected.reason = "bad_state";
    rejected.detail = "not an object";
    page->rejected.push_back(std::move(rejected));
    return;
  }
  CounterChange change;
  rejected.reason = DecodeName(item, &change.name, &rejected.detail);
  auto omitted = item.FindMember("omitted");
  if (rejected.reason.empty() && omitted != item.MemberEnd()) {
    if (omitted->value.IsUint64() && item.MemberCount() == 2) {
      rejected.reason = "too_large";
      rejected.bytes = static_cast<size_t>(omitted->value.GetUint64());
      rejected.detail =
          "omitted by the peer, " + std::to_string(rejected.bytes) + " bytes";
    } else {
      rejected.reason = "bad_state";
      rejected.detail = "malformed omitted marker";
    }
  }
  if (rejected.reason.empty()) {
    rejected.reason =
        DecodeStateMember(item, limits, &change.state, &rejected.detail,
                          &rejected.actors, &rejected.bytes);
  }
  if (!rejected.reason.empty()) {
    // Only for reports: logs and metrics stay readable.
    rejected.name = ToValidUtf8(change.name);
    page->rejected.push_back(std::move(rejected));
    return;
  }
  change.bytes = rejected.bytes;
  page->counters.push_back(std::move(change));
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
  // A name that is not UTF-8 (older versions took any bytes) cannot go into
  // JSON as it is, and a peer could not take it anyway: it is left out.
  std::vector<const CounterChange*> sent;
  for (const CounterChange& change : changes) {
    if (IsValidUtf8(change.name)) sent.push_back(&change);
  }
  // An empty page saying "more" would be refused as making no progress; the
  // cursor still moves, and the puller asks again next round.
  w.Key("more");
  w.Bool(more && !sent.empty());
  w.Key("counters");
  w.StartArray();
  for (const CounterChange* sent_change : sent) {
    const CounterChange& change = *sent_change;
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
  for (const auto& item : array) DecodeChange(item, limits, &parsed);
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
  std::string parsed_name, detail;
  if (!DecodeName(doc, &parsed_name, &detail).empty()) {
    return Status::Corruption("counter reply has a bad name: " + detail);
  }
  if (parsed_name != name) {
    return Status::Corruption("counter reply names another counter");
  }
  bool parsed_found = true;
  if (doc.HasMember("found") && !GetBool(doc, "found", &parsed_found)) {
    return Status::Corruption("counter reply has a malformed \"found\"");
  }
  PnCounter parsed_state;
  size_t actors = 0, bytes = 0;
  const std::string reason =
      DecodeStateMember(doc, limits, &parsed_state, &detail, &actors, &bytes);
  if (!reason.empty()) {
    return Status::Corruption("counter " + name + " refused (" + reason + ": " +
                              detail + ")");
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
