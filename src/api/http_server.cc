#include "api/http_server.h"

#include <glog/logging.h>
#include <pistache/listener.h>
#include <pistache/net.h>
#include <pistache/peer.h>
#include <pistache/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

// Pistache's type_checkers.h defines a REQUIRES of its own; our headers
// below mean the thread-safety annotation.
#undef REQUIRES
#define REQUIRES(...) DC_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))

#include "api/http_connection.h"
#include "api/http_reply.h"
#include "api/routes.h"
#include "util/metrics.h"

namespace dist_counter {

namespace {

// Each connection's deadlines are checked this often.
constexpr int kSweepMs = 100;
// Epoll events taken at once by the sweeper.
constexpr int kMaxEvents = 64;

constexpr char kConnectionKey[] = "dc.conn";

// Pistache's side: connections come and go and input arrives on the
// reactor threads. Pistache copies the handler for each reactor thread;
// the copies share ServerShared.
class Handler : public Pistache::Tcp::Handler {
 public:
  PROTOTYPE_OF(Pistache::Tcp::Handler, Handler)

  explicit Handler(std::shared_ptr<ServerShared> shared)
      : shared_(std::move(shared)) {}

  // Counts the connection; past the cap, or once the server is closing,
  // sends the canned 503 and shuts the socket down, so Pistache reads EOF
  // and closes it.
  void onConnection(const std::shared_ptr<Pistache::Tcp::Peer>& peer) override {
    try {
      auto connection = std::make_shared<HttpConnection>(
          shared_, peer->fd(), peer->address().host());
      peer->putData(kConnectionKey, connection);
      ConnectionLimit& limit = shared_->limit;
      const bool over = limit.open.load() > limit.max;
      if (!over && !shared_->pending.closing()) {
        shared_->Register(connection);
        return;
      }
      connection->Refuse();
      if (over) ReportRefusal();
      const std::string& raw = over ? limit.refusal : limit.closing_refusal;
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

  void onInput(const char* buffer, size_t len,
               const std::shared_ptr<Pistache::Tcp::Peer>& peer) override {
    try {
      if (HttpConnection* c = Find(peer)) c->OnInput(buffer, len);
    } catch (const std::exception& e) {
      LOG(ERROR) << "reading a request failed: " << e.what();
    }
  }

  void onDisconnection(
      const std::shared_ptr<Pistache::Tcp::Peer>& peer) override {
    try {
      if (HttpConnection* c = Find(peer)) c->OnDisconnection();
    } catch (const std::exception& e) {
      LOG(ERROR) << "closing a connection failed: " << e.what();
    }
  }

 private:
  static HttpConnection* Find(
      const std::shared_ptr<Pistache::Tcp::Peer>& peer) {
    return static_cast<HttpConnection*>(peer->tryGetData(kConnectionKey).get());
  }

  // Counts a refusal past the cap; logs at most one WARNING per 10 s.
  void ReportRefusal() {
    MetricAdd(shared_->limit.refused_metric);
    LOG_EVERY_T(WARNING, 10)
        << "connection limit reached (" << shared_->limit.max
        << " open, --max_connections): refusing new connections";
  }

  std::shared_ptr<ServerShared> shared_;
};

// Takes the sweeper's epoll events: the connections whose sockets take
// bytes again (into *writable) and the wake-up eventfd (drained).
void TakeEvents(ServerShared* shared, int timeout_ms,
                std::vector<std::shared_ptr<HttpConnection>>* writable) {
  epoll_event events[kMaxEvents];
  const int n = ::epoll_wait(shared->poll_fd, events, kMaxEvents, timeout_ms);
  for (int i = 0; i < n; ++i) {
    auto* c = static_cast<HttpConnection*>(events[i].data.ptr);
    if (c == nullptr) {
      uint64_t count = 0;  // wakes are counted, not needed
      if (::read(shared->wake_fd, &count, sizeof(count)) < 0) count = 0;
      continue;
    }
    // A connection gone meanwhile is not in the registry any more.
    if (auto connection = shared->Find(c)) writable->push_back(connection);
  }
}

// Until `stopping`: drives connections whose sockets take bytes again and
// ones kicked (replies drained, budget freed) at once; every kSweepMs
// advances the clock and enforces the connections' deadlines.
void RunSweeper(const std::shared_ptr<ServerShared>& shared) {
  std::vector<std::shared_ptr<HttpConnection>> snapshot;
  std::vector<std::shared_ptr<HttpConnection>> writable;
  std::vector<std::weak_ptr<HttpConnection>> kicked;
  int64_t last_sweep = 0;
  for (;;) {
    const int64_t wait = last_sweep + kSweepMs - SteadyMs();
    TakeEvents(shared.get(), static_cast<int>(std::max<int64_t>(wait, 0)),
               &writable);
    const int64_t now = SteadyMs();
    {
      MutexLock lock(&shared->mu);
      if (shared->stopping) return;
      kicked.swap(shared->kicked);
      shared->now_ms.store(now, std::memory_order_relaxed);
      if (now - last_sweep >= kSweepMs) {
        last_sweep = now;
        snapshot.reserve(shared->connections.size());
        for (const auto& entry : shared->connections) {
          snapshot.push_back(entry.second);
        }
      }
    }
    for (const auto& c : writable) c->Drive();
    writable.clear();
    for (const auto& weak : kicked) {
      if (auto c = weak.lock()) c->Drive();
    }
    kicked.clear();
    for (const auto& c : snapshot) c->Sweep(now);
    snapshot.clear();
    MetricSet(shared->queued_metric,
              static_cast<int64_t>(shared->replies.queued()));
  }
}

// Opens the sweeper's epoll set with its wake-up eventfd.
Status OpenPoller(ServerShared* shared) {
  shared->poll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (shared->poll_fd < 0) {
    return Status::IOError(std::string("epoll_create1: ") +
                           std::strerror(errno));
  }
  shared->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (shared->wake_fd < 0) {
    return Status::IOError(std::string("eventfd: ") + std::strerror(errno));
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.ptr = nullptr;
  if (::epoll_ctl(shared->poll_fd, EPOLL_CTL_ADD, shared->wake_fd, &event) !=
      0) {
    return Status::IOError(std::string("epoll_ctl: ") + std::strerror(errno));
  }
  return Status::OK();
}

}  // namespace

ServerShared::~ServerShared() {
  if (poll_fd >= 0) ::close(poll_fd);
  if (wake_fd >= 0) ::close(wake_fd);
}

Status HttpServer::Start(const HttpServerOptions& options, Api* api,
                         std::unique_ptr<HttpServer>* server) {
  if (options.threads < 1) {
    return Status::InvalidArgument("threads must be at least 1");
  }
  if (options.max_connections < 1) {
    return Status::InvalidArgument("max_connections must be at least 1");
  }
  if (options.connection_reply_bytes < 1 || options.total_reply_bytes < 1) {
    return Status::InvalidArgument("reply budgets must be at least 1 byte");
  }
  if (options.write_timeout_ms < 1) {
    return Status::InvalidArgument("write_timeout_ms must be at least 1");
  }
  std::unique_ptr<HttpServer> started(new HttpServer());
  ServerShared* shared = started->shared_.get();
  shared->api = api;
  shared->limits.max_body_bytes = options.max_body_bytes;
  shared->header_timeout_ms = options.header_timeout_ms;
  shared->body_timeout_ms = options.body_timeout_ms;
  shared->keepalive_timeout_ms = options.keepalive_timeout_ms;
  shared->write_timeout_ms = options.write_timeout_ms;
  shared->replies.connection_budget = options.connection_reply_bytes;
  shared->replies.total_budget = options.total_reply_bytes;
  Status s = OpenPoller(shared);
  if (!s.ok()) return s;
  shared->max_buffered = shared->limits.max_head_bytes +
                         shared->limits.max_body_bytes + (64 << 10);
  shared->now_ms.store(SteadyMs());
  ConnectionLimit* limit = &shared->limit;
  limit->max = options.max_connections;
  ApiReply refusal;
  ReplyError(503, "Unavailable", "too many connections", &refusal);
  limit->refusal =
      SerializeReply(refusal, /*keep_alive=*/false, /*head=*/false);
  ReplyError(503, "Unavailable", "shutting down", &refusal);
  limit->closing_refusal =
      SerializeReply(refusal, /*keep_alive=*/false, /*head=*/false);
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
    options.metrics->Describe(
        "dist_counter_http_reply_bytes_queued", "gauge",
        "Reply bytes serialized and not yet taken by the clients' sockets.");
    shared->queued_metric =
        options.metrics->Gauge("dist_counter_http_reply_bytes_queued");
  }
  try {
    Pistache::Address address(options.bind, Pistache::Port(options.port));
    auto listener = std::make_unique<Pistache::Tcp::Listener>(address);
    using Pistache::Tcp::Options;
    listener->init(static_cast<size_t>(options.threads),
                   Pistache::Flags<Options>(Options::ReuseAddr) |
                       Options::NoDelay | Options::CloseOnExec,
                   "dc-http");
    listener->setHandler(std::make_shared<Handler>(started->shared_));
    listener->bind(address);
    listener->runThreaded();
    started->port_ = static_cast<uint16_t>(listener->getPort());
    MutexLock lock(&started->mu_);
    started->listener_ = std::move(listener);
    started->sweeper_ =
        std::thread([shared = started->shared_] { RunSweeper(shared); });
  } catch (const std::exception& e) {
    return Status::IOError("cannot serve on " + options.bind + ":" +
                           std::to_string(options.port) + ": " + e.what());
  }
  *server = std::move(started);
  return Status::OK();
}

HttpServer::HttpServer() : shared_(std::make_shared<ServerShared>()) {}

HttpServer::~HttpServer() { Shutdown(); }

void HttpServer::StopAccepting() { shared_->pending.Close(); }

size_t HttpServer::TEST_QueuedReplyBytes() const {
  return shared_->replies.queued();
}

size_t HttpServer::TEST_PeakQueuedReplyBytes() const {
  return shared_->replies.peak();
}

void HttpServer::Shutdown() {
  MutexLock lock(&mu_);
  if (!listener_) return;
  StopAccepting();
  // Let replies owed go out while the connections live.
  shared_->pending.WaitIdle(std::chrono::seconds(10));
  // From here on nothing is written: replies still owed (a peer slower
  // than 10 s) are dropped.
  std::vector<std::shared_ptr<HttpConnection>> connections;
  {
    MutexLock shared_lock(&shared_->mu);
    shared_->stopping = true;
    for (const auto& entry : shared_->connections) {
      connections.push_back(entry.second);
    }
  }
  shared_->Wake();
  sweeper_.join();
  std::vector<std::shared_ptr<HttpConnection>> open;  // fds still Pistache's
  for (const auto& c : connections) {
    if (c->Close()) open.push_back(c);
  }
  try {
    listener_->shutdown();
  } catch (const std::exception& e) {
    LOG(WARNING) << "shutting down the HTTP server: " << e.what();
  }
  // Joins Pistache's threads and closes the listening socket.
  listener_.reset();
  // Pistache does not close the connections it still held; those it
  // closed meanwhile left the registry.
  std::vector<int> fds;
  {
    MutexLock shared_lock(&shared_->mu);
    for (const auto& c : open) {
      if (shared_->connections.count(c.get()) != 0) fds.push_back(c->fd());
    }
    shared_->connections.clear();
  }
  for (int fd : fds) ::close(fd);
}

}  // namespace dist_counter
