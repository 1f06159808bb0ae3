#include "api/routes.h"

#include <glog/logging.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <string_view>
#include <vector>

#include "api/cluster_view.h"
#include "api/request_metrics.h"
#include "api/request_parser.h"
#include "crdt/pn_counter.h"
#include "proto/wire.h"
#include "store/backup.h"
#include "store/codec.h"
#include "store/counter_store.h"
#include "store/idempotency.h"
#include "util/decimal.h"
#include "util/metrics.h"
#include "util/utf8.h"
#include "util/work_queue.h"

namespace dist_counter {

namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr char kValidationMessage[] = "Validation Failure";
constexpr char kValidationType[] = "ValidationError";

void WriteString(JsonWriter* w, const std::string& s) {
  w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void WriteRaw(JsonWriter* w, const std::string& json,
              rapidjson::Type type = rapidjson::kObjectType) {
  w->RawValue(json.data(), json.size(), type);
}

std::string Finish(const rapidjson::StringBuffer& buffer) {
  return std::string(buffer.GetString(), buffer.GetSize());
}

void ReplyJson(int status, std::string body, ApiReply* reply) {
  reply->status = status;
  reply->body = std::move(body);
  reply->content_type = "application/json";
}

void ReplyNoContent(ApiReply* reply) {
  reply->status = 204;
  reply->body.clear();
}

void ReplyValidation(ApiReply* reply) {
  ReplyError(400, kValidationType, kValidationMessage, reply);
}

// The reply to work refused because the node is stopping.
void ReplyShuttingDown(ApiReply* reply) {
  ReplyError(503, "Unavailable", "shutting down", reply);
}

void ReplyMethodNotAllowed(ApiReply* reply) {
  ReplyError(405, "MethodNotAllowed", "Method Not Allowed", reply);
}

std::string_view TrimSpace(std::string_view text) {
  const char* kSpace = " \t\r\n";
  const size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  const size_t end = text.find_last_not_of(kSpace);
  return text.substr(begin, end - begin + 1);
}

// Reads an unsigned query parameter; `fallback` when absent.
Status QueryUint(const ApiRequest& request, const std::string& key,
                 uint64_t fallback, uint64_t* value) {
  auto it = request.query.find(key);
  if (it == request.query.end()) {
    *value = fallback;
    return Status::OK();
  }
  Status s = ParseUint64(it->second, value);
  if (!s.ok()) return Status::InvalidArgument(key + ": " + s.message());
  return Status::OK();
}

std::string QueryString(const ApiRequest& request, const std::string& key) {
  auto it = request.query.find(key);
  return it == request.query.end() ? std::string() : it->second;
}

// "[a, b, c]", naming at most the first 8 peers, for logs.
std::string DescribePeers(const std::vector<std::string>& peers) {
  constexpr size_t kShown = 8;
  std::string text = "[";
  for (size_t i = 0; i < peers.size() && i < kShown; ++i) {
    if (i > 0) text += ", ";
    text += peers[i];
  }
  if (peers.size() > kShown) {
    text += ", ... " + std::to_string(peers.size() - kShown) + " more";
  }
  return text + "]";
}

// Who this node is, as the peer protocol's replies say.
PeerIdentity NodeIdentity(const CounterStore& store) {
  PeerIdentity node;
  node.challenge_id = store.challenge_id();
  node.node_id = store.node_id();
  node.actor = store.actor_id();
  node.instance = store.instance_id();
  return node;
}

// GET /ping: 200 {"status":"OK"} while the store can persist, else 503
// {"status":"StorageUnavailable","message":"<why>"}.
void ReplyPing(const CounterStore& store, ApiReply* reply) {
  const Status health = store.Health();
  if (health.ok()) return ReplyJson(200, "{\"status\":\"OK\"}", reply);
  // Health checks (curl -f) fail on the 503; the message says why.
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("status");
  w.String("StorageUnavailable");
  w.Key("message");
  WriteString(&w, health.message());
  w.EndObject();
  ReplyJson(503, Finish(buffer), reply);
}

// True for the store's refusals of a write (storage unavailable, quota
// reached): expected under a fault or a limit, logged by the store.
bool IsWriteRefusal(const Status& status) {
  return status.IsStorageUnavailable() || status.IsResourceExhausted();
}

}  // namespace

void ReplyError(int status, const std::string& type, const std::string& message,
                ApiReply* reply) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("message");
  // Messages may quote input (a path, a name); keep the reply valid JSON.
  WriteString(&w, ToValidUtf8(message));
  w.Key("type");
  WriteString(&w, type);
  w.EndObject();
  ReplyJson(status, Finish(buffer), reply);
}

void ReplyStatus(const Status& status, ApiReply* reply) {
  switch (status.code()) {
    case Status::Code::kOk:
      ReplyNoContent(reply);
      return;
    case Status::Code::kInvalidArgument:
      ReplyError(400, "InvalidArgument", status.message(), reply);
      return;
    case Status::Code::kNotFound:
      ReplyError(404, "NotFound", status.message(), reply);
      return;
    case Status::Code::kUnavailable:
    case Status::Code::kBusy:
      ReplyError(503, "Unavailable", status.message(), reply);
      return;
    case Status::Code::kStorageUnavailable:
      ReplyError(503, "StorageUnavailable", status.message(), reply);
      return;
    case Status::Code::kResourceExhausted:
      ReplyError(507, "ResourceExhausted", status.message(), reply);
      return;
    case Status::Code::kCorruption:
    case Status::Code::kIOError:
      ReplyError(500, "InternalError", status.ToString(), reply);
      return;
  }
  ReplyError(500, "InternalError", status.ToString(), reply);
}

Api::Api(const ApiOptions& options, CounterStore* store, ClusterView* cluster,
         Metrics* metrics)
    : options_(options),
      store_(store),
      cluster_(cluster),
      metrics_(metrics),
      request_metrics_(std::make_unique<RequestMetrics>(metrics)) {
  if (metrics_ != nullptr) {
    metrics_->Describe("dist_counter_http_requests_total", "counter",
                       "HTTP requests answered, by route and status.");
    metrics_->Describe("dist_counter_idempotent_replays_total", "counter",
                       "Requests with a known Idempotency-Key answered with "
                       "the first request's reply, nothing applied.");
    replays_metric_ =
        metrics_->Counter("dist_counter_idempotent_replays_total", "");
  }
  if (!options_.auth.token.empty()) {
    auth_ = std::make_unique<Authenticator>(options_.auth);
    if (metrics_ != nullptr) {
      metrics_->Describe("dist_counter_http_unauthorized_total", "counter",
                         "Requests refused with 401 for want of the token, "
                         "by reason.");
      const AuthResult reasons[] = {AuthResult::kMissing,
                                    AuthResult::kNotBearer,
                                    AuthResult::kWrongToken};
      for (size_t i = 0; i < 3; ++i) {
        unauthorized_metric_[i] = metrics_->Counter(
            "dist_counter_http_unauthorized_total",
            std::string("reason=\"") + AuthResultLabel(reasons[i]) + "\"");
      }
    }
  }
  if (cluster_ != nullptr) {
    consistent_pool_ = std::make_unique<WorkQueue>(
        options_.consistent_threads, options_.max_queued_consistent);
  }
}

Api::~Api() {
  // As Stop(), but without reaching the cluster view, which a caller that
  // never called Stop() may have destroyed already.
  stopping_ = true;
  if (consistent_pool_) consistent_pool_->Stop();
}

void Api::Stop() {
  stopping_ = true;
  // Reads waiting on a peer end now (answered "shutting down"), so the
  // wait below is short whatever the peer timeout.
  if (cluster_ != nullptr) cluster_->CancelRefreshes();
  if (consistent_pool_) consistent_pool_->Stop();
}

void Api::Handle(const ApiRequest& request, ApiReply* reply) {
  Serve(request, /*later=*/nullptr, reply);
  CountReply(*reply);
}

void Api::HandleAsync(const ApiRequest& request, ReplyCallback done) {
  ApiReply reply;
  Serve(request, &done, &reply);
  if (!done) return;  // a slow route took `done` and answers later
  CountReply(reply);
  done(reply);
}

void Api::Serve(const ApiRequest& request, ReplyCallback* later,
                ApiReply* reply) {
  Guard(request.method.c_str(), request.path, reply, [&] {
    if (!Authorized(request, reply)) return;
    if (request.body.size() > options_.max_body_bytes) {
      ReplyError(413, "PayloadTooLarge",
                 "request body larger than " +
                     std::to_string(options_.max_body_bytes) + " bytes",
                 reply);
    } else {
      Dispatch(request, later, reply);
    }
  });
}

bool Api::Authorized(const ApiRequest& request, ApiReply* reply) {
  if (!auth_ || request.path == "/ping") return true;
  const AuthResult result = auth_->Check(request.authorization);
  if (result == AuthResult::kOk) return true;
  reply->route = "unauthorized";
  ReplyError(401, "Unauthorized", AuthResultMessage(result), reply);
  reply->headers.emplace_back("WWW-Authenticate", "Bearer");
  const size_t reason = result == AuthResult::kMissing     ? 0
                        : result == AuthResult::kNotBearer ? 1
                                                           : 2;
  MetricAdd(unauthorized_metric_[reason]);
  auth_->LogRefusal(request.client, request.method + " " + request.path,
                    result);
  return false;
}

bool Api::LocalOrAllowed(const ApiRequest& request, ApiReply* reply) {
  if (auth_ || !options_.protected_mode || IsLoopbackClient(request.client)) {
    return true;
  }
  ReplyError(403, "Forbidden",
             "protected mode: this node has no token, so " + request.method +
                 " " + request.path +
                 " is answered only to clients on loopback (127.0.0.1, "
                 "::1). Give every node the same --auth_token_file and send "
                 "Authorization: Bearer <token>, or start the node with "
                 "--protected_mode=false to let anyone who reaches its port "
                 "change it",
             reply);
  const uint64_t unlogged = forbidden_unlogged_.fetch_add(1) + 1;
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t last = last_forbidden_log_ms_.load();
  constexpr int64_t kLogEveryMs = 10000;
  if ((last == INT64_MIN || now - last >= kLogEveryMs) &&
      last_forbidden_log_ms_.compare_exchange_strong(last, now)) {
    forbidden_unlogged_.fetch_sub(unlogged);
    LOG(WARNING) << "protected mode: refused " << request.method << " "
                 << request.path.substr(0, 200) << " from "
                 << (request.client.empty() ? "an unknown address"
                                            : request.client)
                 << " (not loopback, no --auth_token_file); " << unlogged
                 << " such request(s) since the last such line";
  }
  return false;
}

void Api::Guard(const char* what, const std::string& detail, ApiReply* reply,
                const std::function<void()>& body) {
  try {
    body();
  } catch (const std::exception& e) {
    LOG(ERROR) << what << " " << detail << " failed: " << e.what();
    ReplyError(500, "InternalError", "internal error", reply);
  } catch (...) {
    LOG(ERROR) << what << " " << detail << " failed with an unknown exception";
    ReplyError(500, "InternalError", "internal error", reply);
  }
}

void Api::CountReply(const ApiReply& reply) {
  request_metrics_->Count(reply.route, reply.status);
}

// One row of the routing table: a path pattern, the methods it answers,
// its metric label and its handler. A pattern is a path whose segments
// match themselves, except ":name", which matches any one segment: a
// percent-encoded counter name, decoded (and checked) before the handler
// runs.
struct Api::Route {
  const char* pattern;
  unsigned methods;  // kGet | kPost ..., or kAnyMethod
  const char* label;
  void (*handle)(Api* api, const RouteCall& call);
  // Of `methods`, those protected mode answers only to loopback clients.
  unsigned local_methods = 0;
};

// What a row's handler gets.
struct Api::RouteCall {
  const ApiRequest& request;
  const std::string& name;  // the decoded ":name", if the pattern has one
  ReplyCallback* later;     // as for Serve()
  ApiReply* reply;
};

namespace {

constexpr unsigned kGet = 1;
constexpr unsigned kPost = 2;
constexpr unsigned kDelete = 8;
constexpr unsigned kOtherMethod = 4;  // any method but those above
constexpr unsigned kAnyMethod = ~0u;

// The bit of `method` in a Route's methods.
unsigned MethodBit(const std::string& method) {
  if (method == "GET") return kGet;
  if (method == "POST") return kPost;
  if (method == "DELETE") return kDelete;
  return kOtherMethod;
}

// True if `path` has the segments of `pattern` (see Api::Route). Stores
// the segment matched by ":name" in *param. Allocates nothing.
bool MatchPattern(std::string_view pattern, std::string_view path,
                  std::string_view* param) {
  size_t i = 0;
  size_t j = 0;
  for (;;) {
    if (i == pattern.size() || j == path.size()) {
      return i == pattern.size() && j == path.size();
    }
    if (pattern[i] != '/' || path[j] != '/') return false;
    ++i;
    ++j;
    const size_t pattern_end = std::min(pattern.find('/', i), pattern.size());
    const size_t path_end = std::min(path.find('/', j), path.size());
    const std::string_view want = pattern.substr(i, pattern_end - i);
    const std::string_view got = path.substr(j, path_end - j);
    if (!want.empty() && want[0] == ':') {
      *param = got;
    } else if (want != got) {
      return false;
    }
    i = pattern_end;
    j = path_end;
  }
}

}  // namespace

const std::vector<Api::Route>& Api::Routes() {
  // Captureless lambdas: plain function pointers that, being defined in a
  // member of Api, may call its private handlers.
  static const std::vector<Route> routes = {
      {"/ping", kAnyMethod, "ping",
       [](Api* api, const RouteCall& c) { ReplyPing(*api->store_, c.reply); }},
      {"/config", kGet | kPost, "config",
       [](Api* api, const RouteCall& c) {
         api->HandleConfig(c.request, c.reply);
       },
       /*local_methods=*/kPost},
      {"/metrics", kGet, "metrics",
       [](Api* api, const RouteCall& c) { api->HandleMetrics(c.reply); }},
      {"/counters", kGet, "counters",
       [](Api* api, const RouteCall& c) {
         api->HandleList(c.request, c.reply);
       }},
      {"/counters", kPost, "counters",
       [](Api* api, const RouteCall& c) {
         api->HandleBatch(c.request, c.later, c.reply);
       }},
      {"/counter/:name", kPost, "counter",
       [](Api* api, const RouteCall& c) {
         if (c.request.has_idempotency_key) {
           return api->HandleIncrementOnce(c.name, c.request, c.later, c.reply);
         }
         api->HandleIncrement(c.name, c.request.body, c.later, c.reply);
       }},
      {"/counter/:name", kGet, "counter",
       [](Api* api, const RouteCall& c) { api->HandleState(c.name, c.reply); }},
      {"/counter/:name", kDelete, "counter",
       [](Api* api, const RouteCall& c) {
         api->HandleReset(c.name, c.later, c.reply);
       }},
      {"/counter/:name/value", kGet, "counter_value",
       [](Api* api, const RouteCall& c) {
         api->HandleValue(c.name, /*consistent=*/false, c.reply);
       }},
      {"/counter/:name/consistent_value", kGet, "counter_consistent_value",
       [](Api* api, const RouteCall& c) {
         api->HandleConsistent(c.name, c.later, c.reply);
       }},
      {"/internal/changes", kGet, "internal_changes",
       [](Api* api, const RouteCall& c) {
         api->HandleChanges(c.request, c.reply);
       }},
      {"/internal/counter/:name", kGet, "internal_counter",
       [](Api* api, const RouteCall& c) {
         api->HandleInternalCounter(c.name, c.reply);
       }},
      {"/admin/backup", kPost, "admin_backup",
       [](Api* api, const RouteCall& c) { api->HandleBackup(c.reply); },
       /*local_methods=*/kPost},
      {"/admin/backups", kGet, "admin_backups",
       [](Api* api, const RouteCall& c) { api->HandleListBackups(c.reply); },
       /*local_methods=*/kGet},
  };
  return routes;
}

void Api::Dispatch(const ApiRequest& request, ReplyCallback* later,
                   ApiReply* reply) {
  const unsigned method = MethodBit(request.method);
  const Route* path_match = nullptr;  // a row whose path matched
  std::string_view param;
  for (const Route& route : Routes()) {
    if (!MatchPattern(route.pattern, request.path, &param)) continue;
    path_match = &route;
    if ((route.methods & method) == 0) continue;
    reply->route = route.label;
    if ((route.local_methods & method) != 0 &&
        !LocalOrAllowed(request, reply)) {
      return;
    }
    std::string name;
    if (std::strchr(route.pattern, ':') != nullptr &&
        !ParseCounterName(param, &name).ok()) {
      return ReplyValidation(reply);
    }
    route.handle(this, RouteCall{request, name, later, reply});
    return;
  }
  if (path_match != nullptr) {
    reply->route = path_match->label;
    return ReplyMethodNotAllowed(reply);
  }
  reply->route = "unknown";
  ReplyError(404, "NotFound", "no such route: " + request.path, reply);
}

void Api::HandleMetrics(ApiReply* reply) {
  reply->status = 200;
  reply->body = metrics_ != nullptr ? metrics_->Render() : std::string();
  reply->content_type = "text/plain; version=0.0.4";
}

void Api::HandleConfig(const ApiRequest& request, ApiReply* reply) {
  if (request.method == "GET") {
    rapidjson::StringBuffer buffer;
    JsonWriter w(buffer);
    w.StartObject();
    w.Key("actors");
    w.StartArray();
    for (const std::string& peer : store_->Peers()) WriteString(&w, peer);
    w.EndArray();
    w.Key("challenge_id");
    WriteString(&w, store_->challenge_id());
    w.Key("connected_nodes");
    w.StartArray();
    if (cluster_ != nullptr) {
      for (const std::string& peer : cluster_->ConnectedNodes()) {
        WriteString(&w, peer);
      }
    }
    w.EndArray();
    w.EndObject();
    ReplyJson(200, Finish(buffer), reply);
    return;
  }
  if (request.method != "POST") return ReplyMethodNotAllowed(reply);
  if (!options_.peers_dns.empty()) {
    return ReplyError(
        409, "Conflict",
        "the peer list follows DNS (--peers_dns=" + options_.peers_dns +
            "); POST /config cannot change it",
        reply);
  }

  std::vector<std::string> peers;
  Status s = ParseConfigBody(request.body, options_.max_peers, &peers);
  if (!s.ok()) return ReplyStatus(s, reply);
  const std::vector<std::string> old_peers = store_->Peers();
  s = store_->SetPeers(peers);
  if (!s.ok()) {
    LOG(ERROR) << "saving the peer list: " << s.ToString();
    return ReplyStatus(s, reply);
  }
  if (cluster_ != nullptr) cluster_->PeersChanged(peers);
  // Whoever can reach this port can repoint the node: leave a trace.
  LOG(WARNING) << "POST /config from "
               << (request.client.empty() ? "an unknown client"
                                          : request.client)
               << ": peers " << DescribePeers(old_peers) << " -> "
               << DescribePeers(peers)
               << (peers.empty() ? " (no peers: this node no longer syncs)"
                                 : "");
  ReplyNoContent(reply);
}

void Api::HandleIncrement(const std::string& name, const std::string& body,
                          ReplyCallback* later, ApiReply* reply) {
  int64_t delta = 0;
  if (!ParseInt64(TrimSpace(body), &delta).ok()) return ReplyValidation(reply);
  if (later == nullptr) {
    return ReplyIncrement(name, store_->Increment(name, delta), reply);
  }
  // A durable store answers once the WAL sync is done, on its own thread.
  store_->IncrementAsync(name, delta,
                         [this, name, route = reply->route,
                          done = std::move(*later)](const Status& s) {
                           ApiReply async_reply;
                           async_reply.route = route;
                           ReplyIncrement(name, s, &async_reply);
                           CountReply(async_reply);
                           done(async_reply);
                         });
  *later = nullptr;
}

void Api::HandleIncrementOnce(const std::string& name,
                              const ApiRequest& request, ReplyCallback* later,
                              ApiReply* reply) {
  Status s = ValidateIdempotencyKey(request.idempotency_key);
  if (!s.ok()) return ReplyError(400, kValidationType, s.message(), reply);
  int64_t delta = 0;
  if (!ParseInt64(TrimSpace(request.body), &delta).ok()) {
    return ReplyValidation(reply);
  }
  // The parsed request: a retry must repeat the counter and the delta.
  RequestFingerprint fingerprint;
  fingerprint.current =
      FingerprintRequest(CanonicalRequest("POST /counter", {{name, delta}}));
  fingerprint.legacy =
      FingerprintRequest("POST /counter/" + name + "\n" + request.body);
  if (later == nullptr) {
    IdempotentOutcome outcome = IdempotentOutcome::kApplied;
    int recorded = 0;
    s = store_->IncrementOnce(request.idempotency_key, fingerprint, 204, name,
                              delta, &outcome, &recorded);
    return ReplyOnce(name, s, outcome, recorded, reply);
  }
  store_->IncrementOnceAsync(
      request.idempotency_key, fingerprint, 204, name, delta,
      [this, name, route = reply->route, done = std::move(*later)](
          const Status& result, IdempotentOutcome outcome, int recorded) {
        ApiReply async_reply;
        ReplyOnce(name, result, outcome, recorded, &async_reply);
        AnswerLater(route, done, &async_reply);
      });
  *later = nullptr;
}

void Api::ReplyOnce(const std::string& what, const Status& status,
                    IdempotentOutcome outcome, int recorded, ApiReply* reply) {
  if (!status.ok()) return ReplyIncrement(what, status, reply);
  if (outcome == IdempotentOutcome::kKeyReused) {
    return ReplyError(422, "IdempotencyKeyReused",
                      "this Idempotency-Key was used with another request",
                      reply);
  }
  // The reply the first request got (204 is all that is recorded today).
  ReplyNoContent(reply);
  reply->status = recorded;
  if (outcome == IdempotentOutcome::kReplayed) {
    reply->headers.emplace_back("Idempotent-Replayed", "true");
    MetricAdd(replays_metric_);
  }
}

void Api::AnswerLater(std::string_view route, const ReplyCallback& done,
                      ApiReply* reply) {
  reply->route = route;
  CountReply(*reply);
  done(*reply);
}

void Api::HandleConsistent(const std::string& name, ReplyCallback* later,
                           ApiReply* reply) {
  if (stopping_) return ReplyShuttingDown(reply);
  if (later == nullptr || !consistent_pool_) {
    return HandleValue(name, /*consistent=*/true, reply);
  }
  // The read waits on peers: run it on the Api's own threads. `done` is
  // shared so it can be taken back if the backlog is full, and answered
  // with a 503 if Stop() finds the read still queued.
  auto done = std::make_shared<ReplyCallback>(std::move(*later));
  *later = nullptr;
  const std::string_view route = reply->route;
  auto run = [this, name, route, done] {
    ApiReply async_reply;
    async_reply.route = route;
    Guard("consistent read of", name, &async_reply,
          [&] { HandleValue(name, /*consistent=*/true, &async_reply); });
    CountReply(async_reply);
    (*done)(async_reply);
  };
  auto cancel = [this, route, done] {
    ApiReply async_reply;
    async_reply.route = route;
    ReplyShuttingDown(&async_reply);
    CountReply(async_reply);
    (*done)(async_reply);
  };
  if (consistent_pool_->TrySubmit(std::move(run), std::move(cancel))) return;
  *later = std::move(*done);
  if (stopping_) return ReplyShuttingDown(reply);
  ReplyError(503, "Unavailable", "too many consistent reads in flight", reply);
}

void Api::ReplyIncrement(const std::string& name, const Status& status,
                         ApiReply* reply) {
  if (status.IsInvalidArgument()) return ReplyValidation(reply);
  if (!status.ok()) {
    // The store logs (rate-limited) why it cannot take writes; a refusal
    // per request is only counted.
    if (!IsWriteRefusal(status)) {
      LOG(ERROR) << "increment of " << name << " failed: " << status.ToString();
    }
    return ReplyStatus(status, reply);
  }
  ReplyNoContent(reply);
}

void Api::HandleValue(const std::string& name, bool consistent,
                      ApiReply* reply) {
  if (consistent && cluster_ != nullptr) {
    std::vector<std::string> unreachable;
    Status s = cluster_->RefreshCounter(name, &unreachable);
    if (!s.ok() && stopping_) return ReplyShuttingDown(reply);
    if (!s.ok()) {
      rapidjson::StringBuffer buffer;
      JsonWriter w(buffer);
      w.StartObject();
      w.Key("node_down");
      w.Bool(true);
      w.Key("unreachable");
      w.StartArray();
      for (const std::string& peer : unreachable) WriteString(&w, peer);
      w.EndArray();
      w.EndObject();
      ReplyJson(503, Finish(buffer), reply);
      return;
    }
  }
  PnCounter state;
  Status s = store_->Get(name, &state);  // NotFound leaves it empty: 0
  if (!s.ok() && !s.IsNotFound()) return ReplyStatus(s, reply);
  ReplyJson(200, state.ValueString(), reply);
}

void Api::HandleReset(const std::string& name, ReplyCallback* later,
                      ApiReply* reply) {
  if (later == nullptr) return ReplyReset(name, store_->Reset(name), reply);
  // A durable reset answers once its sync is done, on the store's thread.
  store_->ResetAsync(name, [this, name, route = reply->route,
                            done = std::move(*later)](const Status& s) {
    ApiReply async_reply;
    ReplyReset(name, s, &async_reply);
    AnswerLater(route, done, &async_reply);
  });
  *later = nullptr;
}

void Api::ReplyReset(const std::string& name, const Status& status,
                     ApiReply* reply) {
  if (status.IsNotFound()) {
    ReplyError(404, "NotFound", "no counter named " + name, reply);
    return;
  }
  if (!status.ok()) {
    if (!IsWriteRefusal(status)) {
      LOG(ERROR) << "reset of " << name << " failed: " << status.ToString();
    }
    return ReplyStatus(status, reply);
  }
  ReplyNoContent(reply);
}

void Api::HandleState(const std::string& name, ApiReply* reply) {
  PnCounter state;
  Status s = store_->Get(name, &state);
  if (s.IsNotFound()) {
    ReplyError(404, "NotFound", "no counter named " + name, reply);
    return;
  }
  if (!s.ok()) return ReplyStatus(s, reply);
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("name");
  WriteString(&w, name);
  w.Key("value");
  const std::string value = state.ValueString();
  w.RawValue(value.data(), value.size(), rapidjson::kNumberType);
  w.Key("actors");
  WriteRaw(&w, EncodeCounter(state));
  w.EndObject();
  ReplyJson(200, Finish(buffer), reply);
}

void Api::HandleList(const ApiRequest& request, ApiReply* reply) {
  uint64_t limit = 0;
  Status s = QueryUint(request, "limit", 100, &limit);
  if (!s.ok() || limit == 0 || limit > options_.max_list_limit) {
    ReplyError(400, "InvalidArgument",
               "limit must be between 1 and " +
                   std::to_string(options_.max_list_limit),
               reply);
    return;
  }
  std::vector<std::string> names;
  ListValidNames(QueryString(request, "prefix"),
                 QueryString(request, "start_after"), limit + 1, &names);
  // One extra name tells whether another page follows; so does a page cut
  // at max_list_bytes (after at least one name).
  size_t keep = 0;
  size_t bytes = 0;
  for (; keep < names.size() && keep < limit; ++keep) {
    bytes += names[keep].size() + 3;  // quoted, with a comma
    if (keep > 0 && bytes > options_.max_list_bytes) break;
  }
  const bool more = names.size() > keep;
  names.resize(keep);

  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("counters");
  w.StartArray();
  for (const std::string& name : names) WriteString(&w, name);
  w.EndArray();
  w.Key("next_start_after");
  if (more) {
    WriteString(&w, names.back());
  } else {
    w.Null();
  }
  w.EndObject();
  ReplyJson(200, Finish(buffer), reply);
}

void Api::ListValidNames(const std::string& prefix,
                         const std::string& start_after, size_t limit,
                         std::vector<std::string>* names) const {
  std::string after = start_after;
  for (;;) {
    const size_t wanted = limit - names->size();
    std::vector<std::string> batch;
    store_->List(prefix, after, wanted, &batch);
    if (!batch.empty()) after = batch.back();
    for (std::string& name : batch) {
      if (IsValidUtf8(name)) names->push_back(std::move(name));
    }
    if (batch.size() < wanted || names->size() >= limit) return;
  }
}

void Api::HandleBatch(const ApiRequest& request, ReplyCallback* later,
                      ApiReply* reply) {
  const bool keyed = request.has_idempotency_key;
  if (keyed) {
    Status s = ValidateIdempotencyKey(request.idempotency_key);
    if (!s.ok()) return ReplyError(400, kValidationType, s.message(), reply);
  }
  CounterDeltas deltas;
  if (!ParseBatchBody(request.body, &deltas).ok()) {
    return ReplyValidation(reply);
  }
  const std::string what = "a batch";
  if (!keyed && later == nullptr) {
    return ReplyIncrement(what, store_->IncrementBatch(deltas), reply);
  }
  if (!keyed) {
    store_->IncrementBatchAsync(deltas,
                                [this, what, route = reply->route,
                                 done = std::move(*later)](const Status& s) {
                                  ApiReply async_reply;
                                  ReplyIncrement(what, s, &async_reply);
                                  AnswerLater(route, done, &async_reply);
                                });
    *later = nullptr;
    return;
  }
  // The parsed batch, its items in any order: names are unique in a batch.
  RequestFingerprint fingerprint;
  fingerprint.current =
      FingerprintRequest(CanonicalRequest("POST /counters", deltas));
  fingerprint.legacy = FingerprintRequest("POST /counters\n" + request.body);
  if (later == nullptr) {
    IdempotentOutcome outcome = IdempotentOutcome::kApplied;
    int recorded = 0;
    Status s = store_->IncrementBatchOnce(request.idempotency_key, fingerprint,
                                          204, deltas, &outcome, &recorded);
    return ReplyOnce(what, s, outcome, recorded, reply);
  }
  store_->IncrementBatchOnceAsync(
      request.idempotency_key, fingerprint, 204, deltas,
      [this, what, route = reply->route, done = std::move(*later)](
          const Status& result, IdempotentOutcome outcome, int recorded) {
        ApiReply async_reply;
        ReplyOnce(what, result, outcome, recorded, &async_reply);
        AnswerLater(route, done, &async_reply);
      });
  *later = nullptr;
}

void Api::HandleChanges(const ApiRequest& request, ApiReply* reply) {
  uint64_t instance = 0, since = 0, limit = 0, max_bytes = 0;
  Status s = QueryUint(request, "instance", 0, &instance);
  if (s.ok()) s = QueryUint(request, "since", 0, &since);
  if (s.ok()) s = QueryUint(request, "limit", 1000, &limit);
  if (s.ok()) s = QueryUint(request, "max_bytes", 0, &max_bytes);
  if (!s.ok()) return ReplyStatus(s, reply);
  if (limit == 0 || limit > options_.max_changes_limit) {
    limit = options_.max_changes_limit;
  }
  // A cursor from another instance of this node means nothing here: send
  // everything, and say so.
  const bool reset = instance != store_->instance_id();
  if (reset) since = 0;

  // One page at most is held: the store stops at the byte budget.
  std::vector<CounterChange> changes;
  uint64_t next = 0;
  store_->ChangesSince(since, limit, ServedPageBytes(max_bytes), &changes,
                       &next);
  const bool more = next < store_->LatestCursor();
  ReplyJson(
      200, EncodeChangesPage(NodeIdentity(*store_), reset, next, more, changes),
      reply);
}

void Api::HandleInternalCounter(const std::string& name, ApiReply* reply) {
  PnCounter state;
  Status s = store_->Get(name, &state);
  if (!s.ok() && !s.IsNotFound()) return ReplyStatus(s, reply);
  ReplyJson(200, EncodeCounterReply(NodeIdentity(*store_), name, state, s.ok()),
            reply);
}

void Api::HandleBackup(ApiReply* reply) {
  BackupInfo info;
  Status s = store_->CreateBackup(&info);
  if (!s.ok()) return ReplyStatus(s, reply);  // the store logged why
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("backup");
  WriteString(&w, info.name);
  w.Key("counters");
  w.Uint64(info.counters);
  w.EndObject();
  ReplyJson(200, Finish(buffer), reply);
}

void Api::HandleListBackups(ApiReply* reply) {
  std::vector<BackupInfo> backups;
  Status s = store_->ListBackups(&backups);
  if (!s.ok()) return ReplyStatus(s, reply);
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("backups");
  w.StartArray();
  for (const BackupInfo& info : backups) {
    w.StartObject();
    w.Key("name");
    WriteString(&w, info.name);
    w.Key("counters");
    w.Uint64(info.counters);
    w.Key("bytes");
    w.Uint64(info.bytes);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  ReplyJson(200, Finish(buffer), reply);
}

}  // namespace dist_counter
