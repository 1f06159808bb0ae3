// Api turns one HTTP request (already read off the wire) into one reply. It
// validates input into plain values and calls the store or the cluster view;
// it is the only place where a Status becomes an HTTP status code. It knows
// nothing of Pistache, so it is tested without sockets; http_server.h puts
// it on the wire.
//
// Routes:
//   *      /ping                              200 {"status":"OK"}
//   GET    /config                            actors, challenge_id,
//                                             connected_nodes
//   POST   /config                            204; replaces the peer list
//                                             (409 when it follows DNS)
//   POST   /counter/<name>                    204; body a decimal delta
//                                             (once per Idempotency-Key)
//   GET    /counter/<name>                    full per-actor state
//   DELETE /counter/<name>                    204; resets it to 0 as this
//                                             node sees it (404 if unknown)
//   GET    /counter/<name>/value              the value, as decimal text
//   GET    /counter/<name>/consistent_value   the value after a peer refresh
//   GET    /counters?prefix=&start_after=&limit=   names, paginated
//   POST   /counters                          {"name": delta, ...}, one batch
//                                             (once per Idempotency-Key)
//   GET    /metrics                           Prometheus text
//   GET    /internal/changes?instance=&since=&limit=   peer delta sync
//   GET    /internal/counter/<name>           one counter's state, for peers
//   POST   /admin/backup                      backs up the store (200)
//   GET    /admin/backups                     lists the backups
//
// With a token (ApiOptions::auth), every route but /ping first needs
// "Authorization: Bearer <token>"; a request without it, or with another
// token, gets 401 {"message":"...","type":"Unauthorized"} with the header
// "WWW-Authenticate: Bearer", is counted in
// dist_counter_http_unauthorized_total{reason} and is logged at WARNING,
// at most once per 10 s per client address (api/auth.h).
//
// Protected mode (ApiOptions::protected_mode, the default, and no token):
// POST /config and /admin/* answer only clients on a loopback address
// (IsLoopbackClient(ApiRequest::client), api/auth.h); any other client, or
// one whose address is unknown, gets 403 {"message":"...","type":
// "Forbidden"} saying how to allow it (a token, or protected mode off),
// counted under the route's label and logged at WARNING at most once per
// 10 s. With a token the token rules alone apply.
//
// Thread-safe: Handle() may run on many threads at once. The Api holds no
// lock of its own: its options and pointers are fixed at construction and
// stopping_ is atomic. Consistent reads run on a WorkQueue with its own
// locks; a reply callback runs under none of them, except that one Stop()
// cancels runs while the queue holds its stop lock, so a callback must
// never call Stop() (lock order: WorkQueue's stop lock before whatever the
// callback takes, e.g. the HTTP server's replies-owed count).

#ifndef DIST_COUNTER_API_ROUTES_H_
#define DIST_COUNTER_API_ROUTES_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/auth.h"
#include "util/status.h"

namespace dist_counter {

class ClusterView;
class CounterStore;
class Metrics;
class RequestMetrics;
class WorkQueue;
enum class IdempotentOutcome;  // store/counter_store.h

// One request, as the server read it.
struct ApiRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // raw (still percent-encoded), without the query
  std::map<std::string, std::string> query;  // decoded names and values
  std::string body;
  // The caller's IP address as the server saw it; empty if unknown. For
  // logs and protected mode (an unknown address is not loopback).
  std::string client;
  // The value of the Authorization header as sent; empty if there was none.
  std::string authorization;
  // Whether an Idempotency-Key header was sent, and its value.
  bool has_idempotency_key = false;
  std::string idempotency_key;
};

// One reply, for the server to send.
struct ApiReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  // Label for metrics, e.g. "counter_value": always a string literal
  // (static storage, so the view never dangles), listed in
  // request_metrics.cc so counting it takes no lock. Compares by content.
  std::string_view route = "unknown";
  // Further headers to send as they are (name, value), e.g.
  // WWW-Authenticate. The server adds Content-Type, X-SFN-CRC32 and
  // Connection itself; these must not repeat them.
  std::vector<std::pair<std::string, std::string>> headers;
};

struct ApiOptions {
  size_t max_body_bytes = 64 * 1024;  // larger bodies get 413
  size_t max_list_limit = 10000;      // cap on GET /counters?limit=
  // A page of GET /counters ends early (next_start_after set) once its
  // names pass this many bytes, so one request costs little to build.
  size_t max_list_bytes = 64 * 1024;
  size_t max_changes_limit = 10000;  // cap on /internal/changes?limit=
  size_t max_peers = 64;             // POST /config with more peers gets 400
  // When set, the peer list follows this DNS name (--peers_dns) and POST
  // /config gets 409 Conflict.
  std::string peers_dns;
  // HandleAsync() runs /consistent_value reads, which wait on peers, on
  // this many threads of their own, with at most `max_queued_consistent`
  // waiting (more get 503).
  int consistent_threads = 4;
  size_t max_queued_consistent = 256;
  // Token authentication; an empty auth.token leaves every route open.
  AuthOptions auth;
  // Without a token: POST /config and /admin/* answer only loopback
  // clients (see "Protected mode" above). False opens them to anyone who
  // reaches the port. Ignored with a token.
  bool protected_mode = true;
};

class Api {
 public:
  // Does not own `store`, `cluster` or `metrics`, which must outlive the
  // Api. `cluster` may be null (a single node: consistent_value equals
  // value); `metrics` may be null.
  Api(const ApiOptions& options, CounterStore* store, ClusterView* cluster,
      Metrics* metrics);

  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  // Stops the consistent-read threads as Stop() does, but does not cancel
  // running reads through the cluster view (call Stop() first for that).
  ~Api();

  // Stops the consistent-read threads: a consistent read still queued is
  // answered at once with 503 {"type":"Unavailable","message":"shutting
  // down"} (its callback runs on the calling thread), one already running
  // is cancelled (ClusterView::CancelRefreshes) and gets the same 503 within
  // milliseconds, and later ones get the same 503 without reaching the
  // cluster. Returns once no consistent read
  // runs any more, so the cluster view may then be destroyed. Every other
  // route keeps working. Idempotent; thread-safe.
  void Stop();

  // Fills *reply for `request`. Never throws.
  void Handle(const ApiRequest& request, ApiReply* reply);

  // Called with the reply of HandleAsync().
  using ReplyCallback = std::function<void(const ApiReply&)>;

  // Like Handle(), but without blocking the calling (HTTP) thread on slow
  // work: an increment or batch (POST /counter/<name>, POST /counters) on
  // a durable store, one with an Idempotency-Key in either mode, and a
  // reset (DELETE /counter/<name>) on a durable store do not wait for the
  // disk (`done` then runs on the store's commit thread), and a
  // /consistent_value read with a cluster runs on the Api's own threads.
  // Every other request calls `done` before returning. `done` runs
  // exactly once.
  void HandleAsync(const ApiRequest& request, ReplyCallback done);

 private:
  // Fills *reply for `request`. With `later` (HandleAsync), a slow route
  // may instead move *later out, leaving it empty, and call it when done.
  void Serve(const ApiRequest& request, ReplyCallback* later, ApiReply* reply);
  struct Route;      // a row of the routing table (routes.cc)
  struct RouteCall;  // what a row's handler gets
  // The routing table: pattern, methods, metric label, handler, matched in
  // order by Dispatch().
  static const std::vector<Route>& Routes();
  // Finds the row for `request` and runs it: 405 when only the method
  // differs, 400 for a ":name" that is not a valid counter name, 404 when
  // no pattern matches.
  void Dispatch(const ApiRequest& request, ReplyCallback* later,
                ApiReply* reply);
  void HandleMetrics(ApiReply* reply);
  // True if `request` may proceed: no token is required, the route is
  // /ping, or it carries the token. Otherwise fills *reply with the 401,
  // counts and (rate limited) logs the refusal, and returns false.
  bool Authorized(const ApiRequest& request, ApiReply* reply);
  // True if `request`, for a route that protected mode guards, may
  // proceed: a token is configured (Authorized() checked it), protected
  // mode is off, or the client is on loopback. Otherwise fills *reply with
  // the 403, logs (rate limited) and returns false.
  bool LocalOrAllowed(const ApiRequest& request, ApiReply* reply);
  // Runs `body`; an exception from it becomes a JSON 500 in *reply, logged
  // with `what` and `detail` (joined only then, so the usual path builds no
  // string).
  static void Guard(const char* what, const std::string& detail,
                    ApiReply* reply, const std::function<void()>& body);
  // Counts `reply` in the request metrics.
  void CountReply(const ApiReply& reply);
  // Fills *reply for an increment's store result.
  static void ReplyIncrement(const std::string& name, const Status& status,
                             ApiReply* reply);
  void HandleConfig(const ApiRequest& request, ApiReply* reply);
  void HandleIncrement(const std::string& name, const std::string& body,
                       ReplyCallback* later, ApiReply* reply);
  // POST /counter/<name> with an Idempotency-Key
  // (CounterStore::IncrementOnce): 204 when applied or replayed (a replay
  // with the header "Idempotent-Replayed: true", counted), 400 for a bad
  // key, 422 {"type":"IdempotencyKeyReused"} when the key came with another
  // request. With `later`, answers from the store's commit thread (never
  // waiting on the disk here), as HandleIncrement() does.
  void HandleIncrementOnce(const std::string& name, const ApiRequest& request,
                           ReplyCallback* later, ApiReply* reply);
  // Fills *reply for a keyed increment's (or batch's) store result;
  // `what` names it in logs.
  void ReplyOnce(const std::string& what, const Status& status,
                 IdempotentOutcome outcome, int recorded, ApiReply* reply);
  // Answers a request taken out of `later` once its store result is in:
  // counts `reply`, labelled with `route`, and hands it to `done`.
  void AnswerLater(std::string_view route, const ReplyCallback& done,
                   ApiReply* reply);
  void HandleConsistent(const std::string& name, ReplyCallback* later,
                        ApiReply* reply);
  void HandleValue(const std::string& name, bool consistent, ApiReply* reply);
  void HandleState(const std::string& name, ApiReply* reply);
  // DELETE /counter/<name>: resets it (CounterStore::Reset); 204, or 404
  // for a counter this node does not hold. In durable mode the reset's own
  // WAL sync is waited for on the store's commit thread when `later` is
  // given (else on the calling thread).
  void HandleReset(const std::string& name, ReplyCallback* later,
                   ApiReply* reply);
  // Fills *reply for a reset's store result.
  static void ReplyReset(const std::string& name, const Status& status,
                         ApiReply* reply);
  void HandleList(const ApiRequest& request, ApiReply* reply);
  // Appends to *names up to `limit` names that start with `prefix` and sort
  // after `start_after`, leaving out names that are not valid UTF-8 (only
  // data written before the Api refused them holds any): /counters must
  // stay valid JSON. Scans past such names, so a page still fills up.
  void ListValidNames(const std::string& prefix, const std::string& start_after,
                      size_t limit, std::vector<std::string>* names) const;
  // POST /counters; with an Idempotency-Key, once per key
  // (CounterStore::IncrementBatchOnce), replies as HandleIncrementOnce().
  // With `later`, answers from the store's commit thread when it has to
  // wait on the disk.
  void HandleBatch(const ApiRequest& request, ReplyCallback* later,
                   ApiReply* reply);
  void HandleChanges(const ApiRequest& request, ApiReply* reply);
  void HandleInternalCounter(const std::string& name, ApiReply* reply);
  // POST /admin/backup: 200 {"backup":"<name>","counters":N}; 503 when
  // backups are disabled or the store cannot persist, 500 if the
  // checkpoint fails. Blocks for a flush and a checkpoint.
  void HandleBackup(ApiReply* reply);
  // GET /admin/backups: 200 {"backups":[{"name":...,"counters":N,
  // "bytes":B},...]}, oldest first; 503 when backups are disabled.
  void HandleListBackups(ApiReply* reply);

  const ApiOptions options_;
  CounterStore* const store_;
  ClusterView* const cluster_;
  Metrics* const metrics_;
  // dist_counter_http_requests_total, counted without a lock.
  std::unique_ptr<RequestMetrics> request_metrics_;
  std::atomic<bool> stopping_{false};  // Stop() began: no new consistent read
  // Steady ms of the last protected-mode refusal logged (INT64_MIN: none).
  std::atomic<int64_t> last_forbidden_log_ms_{INT64_MIN};
  // Protected-mode refusals not logged since that line.
  std::atomic<uint64_t> forbidden_unlogged_{0};
  // Null without a token (options.auth.token empty).
  std::unique_ptr<Authenticator> auth_;
  // dist_counter_http_unauthorized_total by reason: missing, not_bearer,
  // wrong_token (null without metrics or without a token).
  std::atomic<uint64_t>* unauthorized_metric_[3] = {nullptr, nullptr, nullptr};
  // dist_counter_idempotent_replays_total (null without metrics).
  std::atomic<uint64_t>* replays_metric_ = nullptr;
  // Runs consistent reads (null without a cluster). Last, so it is stopped
  // while everything above is still alive.
  std::unique_ptr<WorkQueue> consistent_pool_;
};

// Fills *reply with the JSON error {"message": message, "type": type}.
void ReplyError(int status, const std::string& type, const std::string& message,
                ApiReply* reply);

// Fills *reply with the error for a failed `status`: InvalidArgument 400,
// NotFound 404, Unavailable and Busy 503, StorageUnavailable 503
// (type "StorageUnavailable"), ResourceExhausted 507, anything else 500.
void ReplyStatus(const Status& status, ApiReply* reply);

}  // namespace dist_counter

#endif  // DIST_COUNTER_API_ROUTES_H_
