#include "cluster/peer_client.h"

#include <curl/curl.h>
#include <rapidjson/document.h>

#include <chrono>
#include <cstring>
#include <utility>

#include "store/codec.h"
#include "util/crc32.h"
#include "util/decimal.h"
#include "util/peer_address.h"
#include "util/url.h"

namespace dist_counter {

namespace {

// Limits on identifiers a peer sends; ours are far shorter.
constexpr size_t kMaxIdBytes = 256;

// Iterative parsing: a deeply nested reply cannot overflow the stack.
constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag;

CURL* Handle(void* curl) { return static_cast<CURL*>(curl); }

int OnProgress(void* abort, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* flag = static_cast<const std::atomic<bool>*>(abort);
  return flag != nullptr && flag->load(std::memory_order_relaxed) ? 1 : 0;
}

std::string BaseUrl(const std::string& address) {
  PeerAddress parsed;
  if (!ParsePeerAddress(address, &parsed).ok()) return "http://" + address;
  return "http://" + parsed.ToString();
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
Status ParseIdentity(const rapidjson::Value& reply, PeerIdentity* node) {
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

// Reads one actor's {"p":<uint64>,"n":<uint64>} and nothing else.
bool ParseActorCounts(const rapidjson::Value& value, ActorCounts* counts) {
  if (!value.IsObject() || value.MemberCount() != 2) return false;
  return GetUint64(value, "p", &counts->p) && GetUint64(value, "n", &counts->n);
}

// Reads a counter state as EncodeCounter() writes it, as strictly as
// DecodeCounter() does, and also rejects an actor id given twice.
Status ParseState(const rapidjson::Value& value, PnCounter* state) {
  if (!value.IsObject()) return Status::Corruption("state is not an object");
  PnCounter parsed;
  for (const auto& member : value.GetObject()) {
    const size_t size = member.name.GetStringLength();
    if (size == 0 || size > kMaxIdBytes) {
      return Status::Corruption("state has a bad actor id");
    }
    std::string actor(member.name.GetString(), size);
    ActorCounts counts;
    if (!ParseActorCounts(member.value, &counts)) {
      return Status::Corruption("state has bad totals for actor " + actor);
    }
    if (parsed.actors().count(actor) != 0) {
      return Status::Corruption("state names actor " + actor + " twice");
    }
    parsed.SetActor(actor, counts);
  }
  *state = std::move(parsed);
  return Status::OK();
}

Status ParseName(const rapidjson::Value& object, std::string* name) {
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

Status ParseStateMember(const rapidjson::Value& object, PnCounter* state) {
  auto it = object.FindMember("state");
  if (it == object.MemberEnd())
    return Status::Corruption("counter without a state");
  return ParseState(it->value, state);
}

Status ParseDocument(const std::string& body, rapidjson::Document* doc) {
  doc->Parse<kParseFlags>(body.data(), body.size());
  if (doc->HasParseError()) return Status::Corruption("reply is not JSON");
  if (!doc->IsObject()) return Status::Corruption("reply is not an object");
  return Status::OK();
}

// Parses a /internal/changes reply to a request of `limit` changes after
// `cursor`.
Status ParseChanges(const std::string& body, const ChangesCursor& cursor,
                    size_t limit, ChangesPage* page) {
  rapidjson::Document doc;
  Status s = ParseDocument(body, &doc);
  if (!s.ok()) return s;
  ChangesPage parsed;
  s = ParseIdentity(doc, &parsed.node);
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
    if (!item.IsObject()) return Status::Corruption("counter is not an object");
    CounterChange change;
    s = ParseName(item, &change.name);
    if (s.ok()) s = ParseStateMember(item, &change.state);
    if (!s.ok()) return s;
    parsed.counters.push_back(std::move(change));
  }
  *page = std::move(parsed);
  return Status::OK();
}

// Parses a /internal/counter/<name> reply.
Status ParseCounter(const std::string& body, const std::string& name,
                    PeerIdentity* node, PnCounter* state) {
  rapidjson::Document doc;
  Status s = ParseDocument(body, &doc);
  if (!s.ok()) return s;
  PeerIdentity parsed_node;
  s = ParseIdentity(doc, &parsed_node);
  if (!s.ok()) return s;
  std::string parsed_name;
  s = ParseName(doc, &parsed_name);
  if (!s.ok()) return s;
  if (parsed_name != name) {
    return Status::Corruption("counter reply names another counter");
  }
  PnCounter parsed_state;
  s = ParseStateMember(doc, &parsed_state);
  if (!s.ok()) return s;
  *node = std::move(parsed_node);
  *state = std::move(parsed_state);
  return Status::OK();
}

std::string ChangesPath(const ChangesCursor& cursor, size_t limit) {
  return "/internal/changes?instance=" + std::to_string(cursor.instance) +
         "&since=" + std::to_string(cursor.since) +
         "&limit=" + std::to_string(limit);
}

std::string CounterPath(const std::string& name) {
  return "/internal/counter/" + PercentEncode(name);
}

}  // namespace

bool InitPeerClients() {
  return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

PeerClient::PeerClient(const std::string& address,
                       const PeerClientOptions& options)
    : address_(address), options_(options), url_(BaseUrl(address)) {
  CURL* curl = curl_easy_init();
  curl_ = curl;
  if (curl == nullptr) return;  // every request then fails with Unavailable
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout_ms));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(options_.timeout_ms));
  curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &PeerClient::OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, this);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &PeerClient::OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, this);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA,
                   const_cast<std::atomic<bool>*>(options_.abort));
  curl_easy_setopt(curl, CURLOPT_PRIVATE, this);
}

PeerClient::~PeerClient() {
  if (curl_ != nullptr) curl_easy_cleanup(Handle(curl_));
}

size_t PeerClient::OnBody(char* data, size_t size, size_t count, void* self) {
  auto* client = static_cast<PeerClient*>(self);
  const size_t bytes = size * count;
  client->bytes_received_ += bytes;
  if (client->body_.size() + bytes > client->options_.max_reply_bytes) {
    client->body_too_large_ = true;
    return 0;  // curl aborts the transfer with CURLE_WRITE_ERROR
  }
  client->body_.append(data, bytes);
  return bytes;
}

size_t PeerClient::OnHeader(char* data, size_t size, size_t count, void* self) {
  auto* client = static_cast<PeerClient*>(self);
  const size_t bytes = size * count;
  std::string_view line(data, bytes);
  if (line.substr(0, 5) == "HTTP/") {  // a new reply's status line
    client->has_crc_ = false;
    client->crc_unreadable_ = false;
  }
  constexpr std::string_view kName = "x-sfn-crc32:";
  if (line.size() <= kName.size() ||
      strncasecmp(line.data(), kName.data(), kName.size()) != 0) {
    return bytes;
  }
  line.remove_prefix(kName.size());
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
    line.remove_prefix(1);
  }
  while (!line.empty() &&
         (line.back() == '\r' || line.back() == '\n' || line.back() == ' ')) {
    line.remove_suffix(1);
  }
  uint64_t crc = 0;
  if (ParseUint64(line, &crc).ok() && crc <= UINT32_MAX) {
    client->has_crc_ = true;
    client->crc_ = static_cast<uint32_t>(crc);
  } else {
    client->has_crc_ = true;  // present but unreadable: never matches
    client->crc_ = 0;
    client->crc_unreadable_ = true;
  }
  return bytes;
}

void PeerClient::Prepare(const std::string& path_and_query) {
  body_.clear();
  body_too_large_ = false;
  has_crc_ = false;
  crc_unreadable_ = false;
  crc_ = 0;
  if (curl_ == nullptr) return;
  const std::string url = url_ + path_and_query;
  curl_easy_setopt(Handle(curl_), CURLOPT_URL, url.c_str());  // curl copies
}

Status PeerClient::Finish(int code) {
  if (curl_ == nullptr)
    return Status::Unavailable(address_ + ": no curl handle");
  const auto result = static_cast<CURLcode>(code);
  if (result != CURLE_OK) {
    const std::string what = address_ + ": ";
    if (body_too_large_) {
      return Status::Corruption(what + "reply larger than " +
                                std::to_string(options_.max_reply_bytes) +
                                " bytes");
    }
    switch (result) {
      case CURLE_OPERATION_TIMEDOUT:
        return Status::Unavailable(what + "timed out");
      case CURLE_ABORTED_BY_CALLBACK:
        return Status::Unavailable(what + "aborted");
      case CURLE_WEIRD_SERVER_REPLY:
      case CURLE_UNSUPPORTED_PROTOCOL:
      case CURLE_BAD_CONTENT_ENCODING:
      case CURLE_TOO_MANY_REDIRECTS:
        return Status::Corruption(what + curl_easy_strerror(result));
      default:
        return Status::Unavailable(what + curl_easy_strerror(result));
    }
  }
  long http_status = 0;
  curl_easy_getinfo(Handle(curl_), CURLINFO_RESPONSE_CODE, &http_status);
  if (http_status >= 500) {
    return Status::Unavailable(address_ + ": HTTP " +
                               std::to_string(http_status));
  }
  if (http_status != 200) {
    return Status::Corruption(address_ + ": unexpected HTTP " +
                              std::to_string(http_status));
  }
  if (has_crc_ && (crc_unreadable_ || crc_ != Crc32(body_))) {
    return Status::Corruption(address_ + ": X-SFN-CRC32 does not match");
  }
  return Status::OK();
}

Status PeerClient::Perform(const std::string& path_and_query) {
  Prepare(path_and_query);
  if (curl_ == nullptr) return Finish(CURLE_FAILED_INIT);
  return Finish(curl_easy_perform(Handle(curl_)));
}

Status PeerClient::FetchChanges(const ChangesCursor& cursor, size_t limit,
                                ChangesPage* page) {
  if (limit == 0) return Status::InvalidArgument("limit must be positive");
  Status s = Perform(ChangesPath(cursor, limit));
  if (!s.ok()) return s;
  s = ParseChanges(body_, cursor, limit, page);
  if (!s.ok()) return Status::Corruption(address_ + ": " + s.message());
  return Status::OK();
}

Status PeerClient::FetchCounter(const std::string& name, PeerIdentity* node,
                                PnCounter* state) {
  Status s = Perform(CounterPath(name));
  if (!s.ok()) return s;
  s = ParseCounter(body_, name, node, state);
  if (!s.ok()) return Status::Corruption(address_ + ": " + s.message());
  return Status::OK();
}

CounterFanout::CounterFanout(const PeerClientOptions& options)
    : options_([&options] {
        PeerClientOptions o = options;
        o.abort = nullptr;
        return o;
      }()),
      multi_(curl_multi_init()) {}

CounterFanout::~CounterFanout() {
  clients_.clear();  // easy handles are never left in the multi handle
  if (multi_ != nullptr) curl_multi_cleanup(static_cast<CURLM*>(multi_));
}

void CounterFanout::FetchCounter(const std::vector<std::string>& addresses,
                                 const std::string& name,
                                 std::vector<Result>* results) {
  results->clear();
  results->resize(addresses.size());
  // Drop clients of peers no longer asked about.
  for (auto it = clients_.begin(); it != clients_.end();) {
    bool wanted = false;
    for (const std::string& a : addresses) wanted = wanted || a == it->first;
    it = wanted ? std::next(it) : clients_.erase(it);
  }

  CURLM* multi = static_cast<CURLM*>(multi_);
  std::vector<PeerClient*> added(addresses.size(), nullptr);
  const std::string path = CounterPath(name);
  for (size_t i = 0; i < addresses.size(); ++i) {
    Result& r = (*results)[i];
    r.address = addresses[i];
    r.status = Status::Unavailable(addresses[i] + ": no answer");
    auto& client = clients_[addresses[i]];
    if (!client) client = std::make_unique<PeerClient>(addresses[i], options_);
    if (multi == nullptr || client->curl_ == nullptr) continue;
    // An address listed twice is asked once; both entries get the answer.
    bool duplicate = false;
    for (size_t j = 0; j < i; ++j)
      duplicate = duplicate || addresses[j] == addresses[i];
    if (duplicate) continue;
    client->Prepare(path);
    if (curl_multi_add_handle(multi, Handle(client->curl_)) == CURLM_OK) {
      added[i] = client.get();
    }
  }

  // Every transfer has its own total timeout; the deadline only guards
  // against a curl bug keeping us here.
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(options_.timeout_ms + 2000);
  std::map<PeerClient*, Status> done;
  int running = 0;
  do {
    if (curl_multi_perform(multi, &running) != CURLM_OK) break;
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      char* priv = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
      auto* client = reinterpret_cast<PeerClient*>(priv);
      done[client] = client->Finish(msg->data.result);
    }
    if (running == 0) break;
    curl_multi_poll(multi, nullptr, 0, 50, nullptr);
  } while (std::chrono::steady_clock::now() < deadline);

  for (size_t i = 0; i < addresses.size(); ++i) {
    PeerClient* client = added[i];
    if (client == nullptr) continue;
    curl_multi_remove_handle(multi, Handle(client->curl_));
  }
  for (size_t i = 0; i < addresses.size(); ++i) {
    PeerClient* client = clients_[addresses[i]].get();
    auto it = done.find(client);
    if (it == done.end()) continue;
    Result& r = (*results)[i];
    r.status = it->second;
    if (!r.status.ok()) continue;
    Status s = ParseCounter(client->body_, name, &r.node, &r.state);
    if (!s.ok())
      r.status = Status::Corruption(addresses[i] + ": " + s.message());
  }
}

}  // namespace dist_counter
