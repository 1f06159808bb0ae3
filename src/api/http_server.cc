#include "api/http_server.h"

#include <glog/logging.h>
#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/peer.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <ostream>
#include <shared_mutex>

#include "api/routes.h"
#include "util/crc32.h"
#include "util/url.h"

namespace dist_counter {

// Counts replies still owed by other threads (durable increments waiting
// for their sync), so that Shutdown() can wait for them: a reply sent after
// the endpoint is gone would write through a dead transport.
struct PendingReplies {
  std::mutex mu;  // guards count and closing
  std::condition_variable cv;
  int count = 0;
  bool closing = false;  // once set, every reply is sent synchronously
  // Held shared while a reply is sent, exclusively to set shut_down.
  std::shared_mutex send_mu;
  bool shut_down = false;  // the endpoint is going away: send nothing more
};

namespace {

using Pistache::Http::ResponseWriter;
namespace Header = Pistache::Http::Header;

// The original service's checksum header: the decimal CRC-32 of the body.
// (Pistache does not send headers added with addRaw, so it gets a class.)
class XSfnCrc32 : public Header::Header {
 public:
  NAME("X-SFN-CRC32")

  XSfnCrc32() = default;
  explicit XSfnCrc32(uint32_t crc) : crc_(crc) {}

  void parse(const std::string& data) override {
    crc_ = static_cast<uint32_t>(std::strtoul(data.c_str(), nullptr, 10));
  }
  void write(std::ostream& os) const override { os << crc_; }

 private:
  uint32_t crc_ = 0;
};

// True if the connection should stay open after this request: HTTP/1.1
// without "Connection: close", or HTTP/1.0 with "Connection: keep-alive".
bool WantsKeepAlive(const Pistache::Http::Request& request) {
  auto connection = request.headers().tryGet<Header::Connection>();
  if (request.version() == Pistache::Http::Version::Http10) {
    return connection && connection->control() ==
                             Pistache::Http::ConnectionControl::KeepAlive;
  }
  return !connection ||
         connection->control() != Pistache::Http::ConnectionControl::Close;
}

void ToApiRequest(const Pistache::Http::Request& in, ApiRequest* out) {
  out->method = Pistache::Http::methodString(in.method());
  out->path = in.resource();
  for (auto it = in.query().parameters_begin();
       it != in.query().parameters_end(); ++it) {
    std::string value;
    if (!PercentDecode(it->second, /*plus_is_space=*/true, &value).ok()) {
      value = it->second;
    }
    out->query[it->first] = std::move(value);
  }
  out->body = in.body();
  // The IP only: Pistache 0.0.5 reports a peer's port in network byte
  // order (port 40001 comes out as 16796), so it would mislead.
  out->client = in.address().host();
}

// Answers every request through one Api. Pistache copies the handler for
// each worker thread; the copies share the Api and the PendingReplies.
class Handler : public Pistache::Http::Handler {
 public:
  HTTP_PROTOTYPE(Handler)

  Handler(Api* api, std::shared_ptr<PendingReplies> pending)
      : api_(api), pending_(std::move(pending)) {}

  void onRequest(const Pistache::Http::Request& request,
                 ResponseWriter response) override {
    try {
      const bool keep_alive = WantsKeepAlive(request);
      const bool head = request.method() == Pistache::Http::Method::Head;
      ApiRequest api_request;
      ToApiRequest(request, &api_request);
      if (!BeginAsync()) {
        ApiReply reply;
        api_->Handle(api_request, &reply);
        Send(keep_alive, head, reply, &response);
        return;
      }
      auto writer = std::make_shared<ResponseWriter>(std::move(response));
      auto pending = pending_;
      api_->HandleAsync(api_request, [=](const ApiReply& reply) {
        try {
          std::shared_lock<std::shared_mutex> send_lock(pending->send_mu);
          if (!pending->shut_down) Send(keep_alive, head, reply, writer.get());
        } catch (const std::exception& e) {
          LOG(ERROR) << "sending a reply failed: " << e.what();
        } catch (...) {
          LOG(ERROR) << "sending a reply failed with an unknown exception";
        }
        EndAsync(pending.get());
      });
    } catch (const std::exception& e) {
      LOG(ERROR) << "answering a request failed: " << e.what();
    } catch (...) {
      LOG(ERROR) << "answering a request failed with an unknown exception";
    }
  }

  // Header and body timeouts (headerTimeout, bodyTimeout) are answered by
  // Pistache itself with an empty 408 and a closed connection; Pistache
  // 0.0.5 offers no hook for a JSON body there.

 private:
  // Registers a reply that may be sent from another thread; false once the
  // server is closing (then answer synchronously).
  bool BeginAsync() {
    std::lock_guard<std::mutex> lock(pending_->mu);
    if (pending_->closing) return false;
    ++pending_->count;
    return true;
  }

  static void EndAsync(PendingReplies* pending) {
    std::lock_guard<std::mutex> lock(pending->mu);
    if (--pending->count == 0) pending->cv.notify_all();
  }

  static void Send(bool keep_alive, bool head, const ApiReply& reply,
                   ResponseWriter* response) {
    auto& headers = response->headers();
    headers.remove<Header::Connection>();
    headers.add<Header::Connection>(
        keep_alive ? Pistache::Http::ConnectionControl::KeepAlive
                   : Pistache::Http::ConnectionControl::Close);
    headers.add<XSfnCrc32>(Crc32(reply.body));
    const auto code = static_cast<Pistache::Http::Code>(reply.status);
    if (reply.status != 204) {
      response->setMime(
          Pistache::Http::Mime::MediaType::fromString(reply.content_type));
    }
    // A reply to HEAD carries no body (RFC 9110 9.3.2): one would be read
    // as the start of the next reply on a kept-alive connection.
    const bool no_body = reply.status == 204 || head;
    auto sent =
        no_body ? response->send(code) : response->send(code, reply.body);
    if (!keep_alive) CloseAfter(std::move(sent), response->getPeer());
  }

  // Pistache 0.0.5 sends "Connection: Close" but leaves the connection
  // open. Once `sent` (the reply's write) completes, shuts the socket down,
  // so the client sees the end of the reply and Pistache, reading EOF,
  // drops the peer and closes its fd. Runs on the peer's own reactor
  // thread, which is the only one that closes that fd.
  static void CloseAfter(Pistache::Async::Promise<ssize_t> sent,
                         const std::shared_ptr<Pistache::Tcp::Peer>& peer) {
    if (!peer) return;
    std::weak_ptr<Pistache::Tcp::Peer> weak = peer;
    sent.then(
        [weak](ssize_t) {
          if (auto alive = weak.lock()) ::shutdown(alive->fd(), SHUT_RDWR);
        },
        Pistache::Async::IgnoreException);
  }

  Api* api_;
  std::shared_ptr<PendingReplies> pending_;
};

}  // namespace

Status HttpServer::Start(const HttpServerOptions& options, Api* api,
                         std::unique_ptr<HttpServer>* server) {
  if (options.threads < 1) {
    return Status::InvalidArgument("threads must be at least 1");
  }
  std::unique_ptr<HttpServer> started(new HttpServer());
  try {
    Pistache::Address address(options.bind, Pistache::Port(options.port));
    started->endpoint_ = std::make_unique<Pistache::Http::Endpoint>(address);
    auto endpoint_options =
        Pistache::Http::Endpoint::options()
            .threads(options.threads)
            .flags(Pistache::Tcp::Options::ReuseAddr)
            // Bodies up to 4 MiB reach the Api, which answers 413 in JSON
            // past its own limit; beyond that Pistache refuses by itself.
            .maxRequestSize(
                std::max<size_t>(4 << 20, options.max_body_bytes + 65536))
            .headerTimeout(std::chrono::milliseconds(options.header_timeout_ms))
            .bodyTimeout(std::chrono::milliseconds(options.body_timeout_ms))
            .keepaliveTimeout(
                std::chrono::milliseconds(options.keepalive_timeout_ms));
    started->endpoint_->init(endpoint_options);
    started->endpoint_->setHandler(
        Pistache::Http::make_handler<Handler>(api, started->pending_));
    started->endpoint_->serveThreaded();
    started->port_ = static_cast<uint16_t>(started->endpoint_->getPort());
  } catch (const std::exception& e) {
    started->endpoint_.reset();
    return Status::IOError("cannot serve on " + options.bind + ":" +
                           std::to_string(options.port) + ": " + e.what());
  }
  *server = std::move(started);
  return Status::OK();
}

HttpServer::HttpServer() : pending_(std::make_shared<PendingReplies>()) {}

HttpServer::~HttpServer() { Shutdown(); }

void HttpServer::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!endpoint_) return;
  {
    // Let replies owed by other threads go out while the transport lives;
    // new requests are answered synchronously from now on.
    std::unique_lock<std::mutex> pending_lock(pending_->mu);
    pending_->closing = true;
    pending_->cv.wait_for(pending_lock, std::chrono::seconds(10),
                          [this] { return pending_->count == 0; });
  }
  {
    // Replies still owed after the wait (a peer slower than 10 s) are
    // dropped rather than written through a destroyed transport.
    std::unique_lock<std::shared_mutex> send_lock(pending_->send_mu);
    pending_->shut_down = true;
  }
  try {
    endpoint_->shutdown();
  } catch (const std::exception& e) {
    LOG(WARNING) << "shutting down the HTTP server: " << e.what();
  }
  endpoint_.reset();
}

}  // namespace dist_counter
