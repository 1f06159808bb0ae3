// HttpServer puts an Api on the wire with Pistache: it reads requests into
// ApiRequests, sends ApiReplies with the Content-Type and X-SFN-CRC32
// headers, keeps HTTP/1.1 connections alive unless the client asked to
// close, and bounds request sizes and slow clients with timeouts.
//
// Start() returns once the socket listens; Shutdown() stops accepting and
// returns once the server's threads are gone. Thread-safe.

#ifndef DIST_COUNTER_API_HTTP_SERVER_H_
#define DIST_COUNTER_API_HTTP_SERVER_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "util/status.h"

namespace Pistache {
namespace Http {
class Endpoint;
}
}  // namespace Pistache

namespace dist_counter {

class Api;
struct PendingReplies;

struct HttpServerOptions {
  std::string bind = "0.0.0.0";       // address to listen on
  uint16_t port = 7777;               // 0 picks a free port (see port())
  int threads = 2;                    // Pistache worker threads
  size_t max_body_bytes = 64 * 1024;  // the Api's 413 limit, for sizing
  int header_timeout_ms = 10000;      // a client must send headers within this
  int body_timeout_ms = 30000;        // ... and its body within this
  int keepalive_timeout_ms = 60000;   // idle keep-alive connections close
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

  // Stops accepting connections and joins the server threads. Idempotent.
  void Shutdown();

 private:
  HttpServer();

  std::mutex mu_;  // guards endpoint_ across Shutdown() calls
  std::unique_ptr<Pistache::Http::Endpoint> endpoint_;
  uint16_t port_ = 0;
  std::shared_ptr<PendingReplies> pending_;  // replies owed by other threads
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_API_HTTP_SERVER_H_
