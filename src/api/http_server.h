// HttpServer puts an Api on the wire with Pistache: it reads requests into
// ApiRequests, sends ApiReplies with the Content-Type and X-SFN-CRC32
// headers, keeps HTTP/1.1 connections alive unless the client asked to
// close, and bounds request sizes and slow clients with timeouts.
//
// Connections: at most `max_connections` client connections are open at
// once. One beyond that is accepted and closed at once, after a canned 503
// {"type":"Unavailable","message":"too many connections"}, so that clients
// can never exhaust the process's descriptors (which RocksDB and peer pulls
// need too). Refusals are logged at WARNING (at most every 10 s) and
// counted in dist_counter_http_connections_refused_total; open connections
// are the gauge dist_counter_http_connections.
//
// Start() returns once the socket listens. StopAccepting() turns new
// connections and requests away with 503 "shutting down" while replies
// already owed are still sent; Shutdown() waits for those replies and
// returns once the server's threads are gone. Thread-safe.
//
// Lock order: mu_ (held by Shutdown() throughout) before the locks of the
// replies-owed count (http_server.cc's PendingReplies). Shutdown() waits
// for replies sent by other threads, which take only the latter.

#ifndef DIST_COUNTER_API_HTTP_SERVER_H_
#define DIST_COUNTER_API_HTTP_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "util/mutex.h"
#include "util/status.h"
#include "util/thread_annotations.h"

namespace Pistache {
namespace Http {
class Endpoint;
}
}  // namespace Pistache

namespace dist_counter {

class Api;
class Metrics;
struct ConnectionLimit;
class PendingReplies;

struct HttpServerOptions {
  std::string bind = "0.0.0.0";       // address to listen on
  uint16_t port = 7777;               // 0 picks a free port (see port())
  int threads = 2;                    // Pistache worker threads
  size_t max_body_bytes = 64 * 1024;  // the Api's 413 limit, for sizing
  int header_timeout_ms = 10000;      // a client must send headers within this
  int body_timeout_ms = 30000;        // ... and its body within this
  int keepalive_timeout_ms = 60000;   // idle keep-alive connections close
  size_t max_connections = 10000;     // open client connections, at least 1
  Metrics* metrics = nullptr;         // not owned; may be null; must outlive us
};

class HttpServer {
 public:
  // Starts serving `api` (not owned; must outlive the server). On success
  // stores the server in *server. Returns IOError if the address cannot be
  // bound (in use, bad address), InvalidArgument for bad options.
  static Status Start(const HttpServerOptions& options, Api* api,
                      std::unique_ptr<HttpServer>* server);

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Calls Shutdown().
  ~HttpServer();

  // The port actually listened on.
  uint16_t port() const { return port_; }

  // From now on, a new connection is closed at once and a new request is
  // answered 503 {"type":"Unavailable","message":"shutting down"} with
  // "Connection: close", without reaching the Api. Requests the Api already
  // took are still answered when it calls back. Idempotent.
  void StopAccepting();

  // StopAccepting(), then waits (up to 10 s) until every reply owed by
  // another thread is sent, then stops the endpoint and joins the server
  // threads. A reply owed past that wait is dropped, never written through
  // the destroyed transport. Idempotent.
  void Shutdown() EXCLUDES(mu_);

 private:
  HttpServer();

  Mutex mu_;  // serializes Shutdown()
  std::unique_ptr<Pistache::Http::Endpoint> endpoint_ GUARDED_BY(mu_);
  // Set before the server is shared, then constant: read unlocked.
  uint16_t port_ = 0;
  std::shared_ptr<PendingReplies> pending_;  // replies owed by other threads
  std::shared_ptr<ConnectionLimit> connections_;  // open connections, cap
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_API_HTTP_SERVER_H_
