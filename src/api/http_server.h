// HttpServer puts an Api on the wire: Pistache's TCP layer accepts
// connections and runs the epoll reactors; HTTP/1.1 is ours
// (api/http_parser.h reads requests). It turns requests into ApiRequests
// and sends ApiReplies with the Content-Type and X-SFN-CRC32 headers (and
// the reply's own headers), keeps HTTP/1.1 connections alive unless the
// client asked to close, and bounds request sizes and slow clients with
// timeouts.
//
// Pipelining: every request a connection sends is answered, in the order
// sent, even when a later request's reply is ready before an earlier one
// (a durable increment waiting for its sync, a consistent read waiting on
// peers). A client that shuts its write side down after its requests
// still gets all their replies, then the connection closes.
//
// Back-pressure, not buffering (api/http_connection.h): a connection's
// further requests stay unread while 64 are in flight, while its replies
// not yet taken by its socket exceed connection_reply_bytes, or while all
// connections' exceed total_reply_bytes (a connection with nothing queued
// still goes on, so /ping is answered). Reply memory is thus bounded by
// total_reply_bytes plus one reply per connection. A client whose socket
// stays full (it reads nothing) for write_timeout_ms while replies wait is
// closed. The bytes queued are the gauge
// dist_counter_http_reply_bytes_queued.
//
// Requests that never reach the Api get our JSON error
// {"message":...,"type":...} with Content-Type and X-SFN-CRC32, then the
// connection closes: 400 (unparseable), 408 (headers not sent within
// header_timeout_ms of their first byte, or the body within
// body_timeout_ms of the headers), 411 (Transfer-Encoding), 413 (a body
// over max_body_bytes), 431 (request line and headers over 16 KiB), 501
// (unknown method), 505 (HTTP version). An idle keep-alive connection (or
// a new one that sends nothing within header_timeout_ms) closes silently
// after keepalive_timeout_ms.
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
// Files: http_server.cc is the Pistache adapter and the sweeper thread,
// http_connection.h one connection, http_reply.h the bytes of a reply.
//
// Lock order: mu_ (held by Shutdown() throughout), then a connection's
// lock, then the server-wide locks (the connection registry, the
// replies-owed count), which are leaves.

#ifndef DIST_COUNTER_API_HTTP_SERVER_H_
#define DIST_COUNTER_API_HTTP_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "util/mutex.h"
#include "util/status.h"
#include "util/thread_annotations.h"

namespace Pistache {
namespace Tcp {
class Listener;
}
}  // namespace Pistache

namespace dist_counter {

class Api;
class Metrics;
struct ServerShared;

struct HttpServerOptions {
  std::string bind = "0.0.0.0";       // address to listen on
  uint16_t port = 7777;               // 0 picks a free port (see port())
  int threads = 2;                    // Pistache reactor threads
  size_t max_body_bytes = 64 * 1024;  // larger bodies get 413
  int header_timeout_ms = 10000;      // a client must send headers within this
  int body_timeout_ms = 30000;        // ... and its body within this
  int keepalive_timeout_ms = 60000;   // idle keep-alive connections close
  size_t max_connections = 10000;     // open client connections, at least 1
  // Back-pressure: a connection's requests wait while its replies not yet
  // taken by the socket exceed connection_reply_bytes, or all
  // connections' exceed total_reply_bytes (see above).
  size_t connection_reply_bytes = 1 << 20;
  size_t total_reply_bytes = 64 << 20;
  int write_timeout_ms = 30000;  // a client taking no reply bytes closes
  Metrics* metrics = nullptr;    // not owned; may be null; must outlive us
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

  // StopAccepting(), then waits (up to 10 s) until every reply owed is
  // sent, then closes every connection, stops the listener and joins the
  // server threads. A reply owed past that wait is dropped, never written
  // to a closed connection. Idempotent.
  void Shutdown() EXCLUDES(mu_);

  // Reply bytes serialized and not yet taken by a socket, now and at most.
  size_t TEST_QueuedReplyBytes() const;
  size_t TEST_PeakQueuedReplyBytes() const;

 private:
  HttpServer();

  Mutex mu_;  // serializes Shutdown()
  std::unique_ptr<Pistache::Tcp::Listener> listener_ GUARDED_BY(mu_);
  // Timeouts, resumed connections, sockets that take bytes again.
  std::thread sweeper_ GUARDED_BY(mu_);
  // Set before the server is shared, then constant: read unlocked.
  uint16_t port_ = 0;
  // What the handler's copies, the connections and the sweeper share.
  std::shared_ptr<ServerShared> shared_;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_API_HTTP_SERVER_H_
