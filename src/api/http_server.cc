#include "api/http_server.h"

#include <glog/logging.h>
#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/peer.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <ostream>

#include "api/routes.h"
#include "util/crc32.h"
#include "util/metrics.h"
#include "util/mutex.h"
#include "util/thread_annotations.h"
#include "util/url.h"

namespace dist_counter {

// Counts replies still owed by other threads (durable increments waiting
// for their sync, consistent reads), so that Shutdown() can wait for them:
// a reply sent after the endpoint is gone would write through a dead
// transport. Thread-safe.
//
// Lock order: HttpServer::mu_ before mu_ and send_mu_, which are never held
// together (a reply is sent, then End() is called).
class PendingReplies {
 public:
  // Registers a reply that will be sent from another thread and returns
  // true, or returns false once Close() was called.
  bool Begin() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    if (closing_) return false;
    ++count_;
    return true;
  }

  // Ends what Begin() registered, whether the reply was sent or dropped.
  void End() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    if (--count_ == 0) idle_.SignalAll();
  }

  // From now on Begin() returns false. Idempotent.
  void Close() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    closing_ = true;
  }

  bool closing() const EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return closing_;
  }

  // Waits until no reply is owed, or `timeout` has passed.
  void WaitIdle(std::chrono::milliseconds timeout) EXCLUDES(mu_) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    MutexLock lock(&mu_);
    while (count_ > 0) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return;
      idle_.WaitFor(&mu_, deadline - now);
    }
  }

  // Calls `send` unless ShutDown() was called, which waits for it. Sends
  // may run concurrently with each other.
  template <class Send>
  void SendUnlessShutDown(const Send& send) EXCLUDES(send_mu_) {
    ReaderMutexLock lock(&send_mu_);
    if (!shut_down_) send();
  }

  // Waits for the sends in progress; every later one is dropped.
  void ShutDown() EXCLUDES(send_mu_) {
    WriterMutexLock lock(&send_mu_);
    shut_down_ = true;
  }

 private:
  mutable Mutex mu_;
  CondVar idle_;  // signalled when count_ drops to 0
  int count_ GUARDED_BY(mu_) = 0;
  bool closing_ GUARDED_BY(mu_) = false;
  SharedMutex send_mu_;  // held shared by each send, exclusively by ShutDown
  bool shut_down_ GUARDED_BY(send_mu_) = false;  // the endpoint is going
};

// Counts open client connections against the cap; shared by the handler's
// copies (one per Pistache thread) and by the connections' slots.
struct ConnectionLimit {
  size_t max = 0;
  std::atomic<size_t> open{0};
  // The canned replies sent to a connection refused past the cap, and to
  // one refused because the server is closing.
  std::string refusal;
  std::string closing_refusal;
  std::atomic<uint64_t>* refused_metric = nullptr;  // null without metrics
  std::atomic<int64_t>* open_metric = nullptr;
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

// Any further header of an ApiReply (e.g. WWW-Authenticate), sent as it is.
// Pistache sends only Header subclasses; this one takes its name at run
// time.
class ReplyHeader : public Header::Header {
 public:
  ReplyHeader(std::string name, std::string value)
      : name_(std::move(name)), value_(std::move(value)) {}

  const char* name() const override { return name_.c_str(); }
  uint64_t hash() const override {
    return Pistache::Http::Header::detail::hash(name_.c_str());
  }
  void parse(const std::string& data) override { value_ = data; }
  void write(std::ostream& os) const override { os << value_; }

 private:
  std::string name_;
  std::string value_;
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
  // Pistache parses Authorization into its own class, keeping the value.
  if (auto authorization = in.headers().tryGet<Header::Authorization>()) {
    out->authorization = authorization->value();
  } else if (auto raw = in.headers().tryGetRaw("Authorization")) {
    out->authorization = raw->value();
  }
  // The IP only: Pistache 0.0.5 reports a peer's port in network byte
  // order (port 40001 comes out as 16796), so it would mislead.
  out->client = in.address().host();
}

// One open connection's share of the ConnectionLimit, kept in the peer's
// data: Pistache destroys it with the peer, however the connection ends
// (client close, timeout, shutdown).
class ConnectionSlot {
 public:
  explicit ConnectionSlot(std::shared_ptr<ConnectionLimit> limit)
      : limit_(std::move(limit)) {
    const size_t open = limit_->open.fetch_add(1) + 1;
    MetricSet(limit_->open_metric, static_cast<int64_t>(open));
  }
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ~ConnectionSlot() {
    const size_t open = limit_->open.fetch_sub(1) - 1;
    MetricSet(limit_->open_metric, static_cast<int64_t>(open));
  }

  bool refused = false;  // turned away: its requests are ignored

 private:
  std::shared_ptr<ConnectionLimit> limit_;
};

constexpr char kSlotKey[] = "dist_counter.slot";

// A complete "Connection: close" HTTP/1.1 reply carrying `reply`, for a
// connection refused before Pistache answers anything on it.
std::string RawReply(const ApiReply& reply) {
  return "HTTP/1.1 " + std::to_string(reply.status) +
         " Service Unavailable\r\nContent-Type: " + reply.content_type +
         "\r\nX-SFN-CRC32: " + std::to_string(Crc32(reply.body)) +
         "\r\nContent-Length: " + std::to_string(reply.body.size()) +
         "\r\nConnection: close\r\n\r\n" + reply.body;
}

// Answers every request through one Api. Pistache copies the handler for
// each worker thread; the copies share the Api, the PendingReplies and the
// ConnectionLimit.
class Handler : public Pistache::Http::Handler {
 public:
  HTTP_PROTOTYPE(Handler)

  Handler(Api* api, std::shared_ptr<PendingReplies> pending,
          std::shared_ptr<ConnectionLimit> connections)
      : api_(api),
        pending_(std::move(pending)),
        connections_(std::move(connections)) {}

  // Counts the connection; past the cap, or once the server is closing,
  // sends the canned 503 and shuts the socket down, so Pistache reads EOF
  // and closes it. Runs on the connection's reactor thread.
  void onConnection(const std::shared_ptr<Pistache::Tcp::Peer>& peer) override {
    try {
      // What Pistache::Http::Handler::onConnection (private, so not callable
      // from here) does: give the connection its request parser.
      peer->putData(ParserData, std::make_shared<Pistache::Http::RequestParser>(
                                    getMaxRequestSize()));
      auto slot = std::make_shared<ConnectionSlot>(connections_);
      peer->putData(kSlotKey, slot);
      const bool over = connections_->open.load() > connections_->max;
      if (!over && !pending_->closing()) return;
      slot->refused = true;
      if (over) ReportRefusal();
      const std::string& raw =
          over ? connections_->refusal : connections_->closing_refusal;
      // A fresh socket's send buffer is empty: this never blocks or splits.
      if (::send(peer->fd(), raw.data(), raw.size(),
                 MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        VLOG(1) << "refusing a connection: " << std::strerror(errno);
      }
      ::shutdown(peer->fd(), SHUT_RDWR);
    } catch (const std::exception& e) {
      LOG(ERROR) << "accepting a connection failed: " << e.what();
    }
  }

  void onRequest(const Pistache::Http::Request& request,
                 ResponseWriter response) override {
    try {
      if (Refused(response)) return;
      const bool keep_alive = WantsKeepAlive(request);
      const bool head = request.method() == Pistache::Http::Method::Head;
      if (!pending_->Begin()) {
        // Closing: turn the request away without reaching the Api.
        ApiReply reply;
        ReplyError(503, "Unavailable", "shutting down", &reply);
        Send(/*keep_alive=*/false, head, reply, &response);
        return;
      }
      ApiRequest api_request;
      ToApiRequest(request, &api_request);
      auto writer = std::make_shared<ResponseWriter>(std::move(response));
      auto pending = pending_;
      api_->HandleAsync(api_request, [=](const ApiReply& reply) {
        // The reply is owed until Pistache has written it (Send() only
        // queues it on the connection's reactor): a shutdown must not tear
        // the transport down in between. End() runs exactly once.
        auto ended = std::make_shared<std::atomic<bool>>(false);
        auto end = [pending, ended] {
          if (!ended->exchange(true)) pending->End();
        };
        bool queued = false;
        try {
          pending->SendUnlessShutDown([&] {
            Send(keep_alive, head, reply, writer.get(), end);
            queued = true;
          });
        } catch (const std::exception& e) {
          LOG(ERROR) << "sending a reply failed: " << e.what();
        } catch (...) {
          LOG(ERROR) << "sending a reply failed with an unknown exception";
        }
        if (!queued) end();
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
  // True if the request came on a connection refused in onConnection()
  // (sent before the refusal was read): it is dropped unanswered.
  static bool Refused(const ResponseWriter& response) {
    std::shared_ptr<Pistache::Tcp::Peer> peer = response.getPeer();
    if (!peer) return false;
    auto slot =
        std::static_pointer_cast<ConnectionSlot>(peer->tryGetData(kSlotKey));
    return slot != nullptr && slot->refused;
  }

  // Counts a refusal past the cap; logs at most one WARNING per 10 s.
  void ReportRefusal() {
    MetricAdd(connections_->refused_metric);
    LOG_EVERY_T(WARNING, 10)
        << "connection limit reached (" << connections_->max
        << " open, --max_connections): refusing new connections";
  }

  // Queues `reply` on the connection. `written` (if set) runs once the
  // write completed or failed, on the connection's reactor thread (or here,
  // if Pistache wrote it at once).
  static void Send(bool keep_alive, bool head, const ApiReply& reply,
                   ResponseWriter* response,
                   const std::function<void()>& written = nullptr) {
    auto& headers = response->headers();
    headers.remove<Header::Connection>();
    headers.add<Header::Connection>(
        keep_alive ? Pistache::Http::ConnectionControl::KeepAlive
                   : Pistache::Http::ConnectionControl::Close);
    headers.add<XSfnCrc32>(Crc32(reply.body));
    for (const auto& [name, value] : reply.headers) {
      headers.add(std::make_shared<ReplyHeader>(name, value));
    }
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
    AfterWrite(std::move(sent), keep_alive ? nullptr : response->getPeer(),
               written);
  }

  // Once `sent` (the reply's write) completes: if `close` is set, shuts its
  // socket down, since Pistache 0.0.5 sends "Connection: Close" but leaves
  // the connection open (the client then sees the end of the reply and
  // Pistache, reading EOF, drops the peer and closes its fd); then runs
  // `written`. A failed write runs `written` only. Runs on the peer's own
  // reactor thread, which is the only one that closes that fd.
  static void AfterWrite(Pistache::Async::Promise<ssize_t> sent,
                         const std::shared_ptr<Pistache::Tcp::Peer>& close,
                         const std::function<void()>& written) {
    if (!close && !written) return;
    std::weak_ptr<Pistache::Tcp::Peer> weak = close;
    const bool shut = close != nullptr;
    sent.then(
        [weak, shut, written](ssize_t) {
          if (shut) {
            if (auto alive = weak.lock()) ::shutdown(alive->fd(), SHUT_RDWR);
          }
          if (written) written();
        },
        [written](std::exception_ptr) {
          if (written) written();
        });
  }

  Api* api_;
  std::shared_ptr<PendingReplies> pending_;
  std::shared_ptr<ConnectionLimit> connections_;
};

}  // namespace

Status HttpServer::Start(const HttpServerOptions& options, Api* api,
                         std::unique_ptr<HttpServer>* server) {
  if (options.threads < 1) {
    return Status::InvalidArgument("threads must be at least 1");
  }
  if (options.max_connections < 1) {
    return Status::InvalidArgument("max_connections must be at least 1");
  }
  std::unique_ptr<HttpServer> started(new HttpServer());
  ConnectionLimit* limit = started->connections_.get();
  limit->max = options.max_connections;
  ApiReply refusal;
  ReplyError(503, "Unavailable", "too many connections", &refusal);
  limit->refusal = RawReply(refusal);
  ReplyError(503, "Unavailable", "shutting down", &refusal);
  limit->closing_refusal = RawReply(refusal);
  if (options.metrics != nullptr) {
    options.metrics->Describe("dist_counter_http_connections", "gauge",
                              "Open client connections.");
    options.metrics->Describe(
        "dist_counter_http_connections_refused_total", "counter",
        "Connections closed at once because --max_connections were open.");
    limit->open_metric =
        options.metrics->Gauge("dist_counter_http_connections");
    limit->refused_metric =
        options.metrics->Counter("dist_counter_http_connections_refused_total");
  }
  try {
    Pistache::Address address(options.bind, Pistache::Port(options.port));
    auto endpoint = std::make_unique<Pistache::Http::Endpoint>(address);
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
    endpoint->init(endpoint_options);
    endpoint->setHandler(Pistache::Http::make_handler<Handler>(
        api, started->pending_, started->connections_));
    endpoint->serveThreaded();
    started->port_ = static_cast<uint16_t>(endpoint->getPort());
    MutexLock lock(&started->mu_);
    started->endpoint_ = std::move(endpoint);
  } catch (const std::exception& e) {
    return Status::IOError("cannot serve on " + options.bind + ":" +
                           std::to_string(options.port) + ": " + e.what());
  }
  *server = std::move(started);
  return Status::OK();
}

HttpServer::HttpServer()
    : pending_(std::make_shared<PendingReplies>()),
      connections_(std::make_shared<ConnectionLimit>()) {}

HttpServer::~HttpServer() { Shutdown(); }

void HttpServer::StopAccepting() { pending_->Close(); }

void HttpServer::Shutdown() {
  MutexLock lock(&mu_);
  if (!endpoint_) return;
  StopAccepting();
  // Let replies owed by other threads go out while the transport lives.
  pending_->WaitIdle(std::chrono::seconds(10));
  // Replies still owed after the wait (a peer slower than 10 s) are
  // dropped rather than written through a destroyed transport.
  pending_->ShutDown();
  try {
    endpoint_->shutdown();
  } catch (const std::exception& e) {
    LOG(WARNING) << "shutting down the HTTP server: " << e.what();
  }
  endpoint_.reset();
}

}  // namespace dist_counter
