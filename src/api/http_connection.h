// An HttpConnection is one client connection of HttpServer: it parses the
// requests read from it (api/http_parser.h), hands them to the Api, and
// writes their replies, in request order, to the socket itself. It knows a
// file descriptor, not Pistache: http_server.cc feeds it input and tells
// it when Pistache closes the socket.
//
// What a client can make it hold is bounded (back-pressure, not
// buffering): requests are dispatched only while fewer than 64 are in
// flight and its replies waiting for the socket (queued) stay under
// ServerShared's per-connection budget, and, across all connections,
// under the total budget. A connection with nothing queued may always
// dispatch its next request, so a client that reads its replies (a
// health check) is answered however full the others are. The memory held
// for replies is thus at most the total budget plus one reply per open
// connection. A client that does not read is closed once its socket has
// taken nothing for write_timeout_ms while replies wait. After the client
// shuts its write side down (Pistache then closes its descriptor), the
// requests already read are answered on a duplicate descriptor, then it
// closes.
//
// The ServerShared a connection points to is shared by the handler, every
// connection and the sweeper thread (http_server.cc), which enforces the
// deadlines, resumes connections whose replies drained, and is told by
// epoll when a full socket takes bytes again.

#ifndef DIST_COUNTER_API_HTTP_CONNECTION_H_
#define DIST_COUNTER_API_HTTP_CONNECTION_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/http_parser.h"
#include "util/mutex.h"
#include "util/thread_annotations.h"

namespace dist_counter {

class Api;
struct ApiReply;
struct HttpRequestHead;

// Milliseconds of the steady clock.
int64_t SteadyMs();

// Counts replies owed (requests handed to the Api and not yet written or
// dropped), so that Shutdown() can wait for them. Thread-safe; mu_ is a
// leaf lock.
class PendingReplies {
 public:
  // Registers a reply owed and returns true, or returns false once Close()
  // was called.
  bool Begin() EXCLUDES(mu_);

  // Ends what Begin() registered, whether the reply was written or dropped.
  void End() EXCLUDES(mu_);

  // From now on Begin() returns false. Idempotent.
  void Close() EXCLUDES(mu_);

  bool closing() const EXCLUDES(mu_);

  // Waits until no reply is owed, or `timeout` has passed.
  void WaitIdle(std::chrono::milliseconds timeout) EXCLUDES(mu_);

 private:
  mutable Mutex mu_;
  CondVar idle_;  // signalled when count_ drops to 0
  int64_t count_ GUARDED_BY(mu_) = 0;
  bool closing_ GUARDED_BY(mu_) = false;
};

// Counts open client connections against the cap. Thread-safe (atomics;
// the other fields are set before the server starts).
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

// Reply bytes queued (serialized, not yet taken by a socket) across all
// connections, against the total budget. Thread-safe (atomics).
class ReplyBytes {
 public:
  // Counts `n` more bytes queued.
  void Add(size_t n);
  // Counts `n` bytes written or dropped. Returns true if the total is now
  // under `total_budget` (and connections may be waiting for that).
  bool Release(size_t n);
  // True while the total is at or over the budget.
  bool Over() const {
    return queued_.load(std::memory_order_relaxed) >= total_budget;
  }
  size_t queued() const { return queued_.load(std::memory_order_relaxed); }
  size_t peak() const { return peak_.load(std::memory_order_relaxed); }

  // Set before the server starts, then constant.
  size_t connection_budget = 0;
  size_t total_budget = 0;

 private:
  std::atomic<size_t> queued_{0};
  std::atomic<size_t> peak_{0};  // the most queued at once
};

class HttpConnection;

// What the handler's copies (one per reactor thread), the connections and
// the sweeper share. Fields above `mu` are set before the server starts,
// then constant (but for the thread-safe members).
struct ServerShared {
  Api* api = nullptr;
  HttpParseLimits limits;
  int64_t header_timeout_ms = 0;
  int64_t body_timeout_ms = 0;
  int64_t keepalive_timeout_ms = 0;
  int64_t write_timeout_ms = 0;
  size_t max_buffered = 0;  // unparsed input one connection may hold
  PendingReplies pending;
  ConnectionLimit limit;
  ReplyBytes replies;
  std::atomic<int64_t>* queued_metric = nullptr;  // null without metrics
  // The sweeper's epoll set: connections' full sockets (EPOLLOUT, one
  // shot, data.ptr the HttpConnection) and `wake_fd` (data.ptr null).
  int poll_fd = -1;
  int wake_fd = -1;  // an eventfd: written to wake the sweeper
  // A clock updated by the sweeper every kSweepMs, read for deadlines.
  std::atomic<int64_t> now_ms{0};

  Mutex mu;  // a leaf
  // Open connections (and ones still writing after the client's close).
  std::unordered_map<HttpConnection*, std::shared_ptr<HttpConnection>>
      connections GUARDED_BY(mu);
  // Connections the sweeper is to drive at once (replies drained).
  std::vector<std::weak_ptr<HttpConnection>> kicked GUARDED_BY(mu);
  // Connections waiting for the total of queued replies to fall under the
  // budget; moved to `kicked` when it does.
  std::vector<std::weak_ptr<HttpConnection>> budget_waiters GUARDED_BY(mu);
  std::atomic<bool> has_budget_waiters{false};
  bool stopping GUARDED_BY(mu) = false;

  ServerShared() = default;
  ServerShared(const ServerShared&) = delete;
  ServerShared& operator=(const ServerShared&) = delete;
  // Closes poll_fd and wake_fd (in http_server.cc, which opens them).
  ~ServerShared();

  void Register(const std::shared_ptr<HttpConnection>& c) EXCLUDES(mu);
  void Unregister(HttpConnection* c) EXCLUDES(mu);
  // The registered connection at `c`, or null.
  std::shared_ptr<HttpConnection> Find(HttpConnection* c) EXCLUDES(mu);
  // Asks the sweeper to drive `c` at once.
  void Kick(std::weak_ptr<HttpConnection> c) EXCLUDES(mu);
  // `c` waits for queued replies to fall under the total budget.
  void AwaitBudget(std::weak_ptr<HttpConnection> c) EXCLUDES(mu);
  // Kicks the connections waiting for the budget.
  void WakeBudgetWaiters() EXCLUDES(mu);
  // Wakes the sweeper.
  void Wake();
};

// One client connection: its unparsed input, and its replies in request
// order (slots), each written once it and all before it are ready.
//
// Threads: the connection's reactor thread (input, its disconnection), any
// thread that completes a reply (the reactor itself for most routes, the
// store's commit thread, the consistent-read threads), the sweeper, and
// Shutdown(). Everything mutable is guarded by mu_. Requests are parsed
// and handed to the Api only on the reactor thread or the sweeper (never
// on a thread that completes replies: a durable increment handed to the
// store from its own commit thread would wait on itself). The fd is
// written only under mu_ and only before the phase is kClosed, so no
// thread writes to an fd Pistache has closed (and which may already be
// another connection's).
class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  // `fd` stays Pistache's: it closes it after OnDisconnection().
  HttpConnection(std::shared_ptr<ServerShared> shared, int fd,
                 std::string client);

  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  ~HttpConnection();

  // Marks the connection refused: its input is ignored, nothing written.
  void Refuse() EXCLUDES(mu_);

  // Takes bytes read by the reactor thread, then parses and dispatches
  // what is complete and allowed.
  void OnInput(const char* data, size_t size) EXCLUDES(mu_);

  // Pistache is about to close the fd: the client closed or shut its
  // write side down. Replies still owed are written to a duplicate of the
  // fd (to no avail if the client closed: the write fails, they drop).
  void OnDisconnection() EXCLUDES(mu_);

  // Parses the complete requests buffered and hands them to the Api in
  // order while the bounds allow, then writes the replies ready. Runs on
  // the sweeper (when the socket takes bytes again, when kicked). On the
  // reactor thread the same work stops once the client's socket is full:
  // a client slower than its replies has them built by the sweeper, so
  // that /ping on the reactor is not held up behind them.
  void Drive() EXCLUDES(mu_);

  // Enforces deadlines (header, body, keep-alive, linger, write) and
  // resumes a connection that missed a wake-up. Runs on the sweeper.
  void Sweep(int64_t now) EXCLUDES(mu_);

  // Stops every write; Shutdown() calls it before Pistache goes. Closes
  // the fd if it is our duplicate. Returns true if the fd is still
  // Pistache's (and open).
  bool Close() EXCLUDES(mu_);

  // The fd, for Shutdown() to close once Pistache's threads are gone.
  int fd() const EXCLUDES(mu_);

 private:
  // Where the connection is in its life. Only these moves happen:
  // kReading -> kDraining (a request said Connection: close, an error, too
  // much input), {kReading, kDraining} -> kDetached (the client shut its
  // write side with replies owed), {kReading, kDraining} -> kLingering
  // (the last reply went out), any -> kShut (a write failed, a timeout,
  // refused), any -> kClosed.
  enum class Phase {
    kReading,    // requests are read, dispatched and answered
    kDraining,   // no more input is taken; owed replies go out, then it ends
    kDetached,   // fd_ is our dup; requests read are answered, then closed
    kLingering,  // our write side is shut; input is read and dropped
    kShut,       // shut down both ways; Pistache closes the fd on its EOF
    kClosed,     // fd_ is not ours to use any more
  };
  enum class Deadline { kNone, kIdle, kHeader, kBody, kLinger };

  // One request's reply, in request order.
  struct Slot {
    std::string bytes;         // the whole reply, once ready
    size_t written = 0;        // bytes of it already sent
    bool ready = false;        // bytes holds the reply
    bool close_after = false;  // the connection ends after it
    bool owed = true;          // counted in PendingReplies
  };

  // Stores the reply to request `seq` and writes what is ready. Any thread.
  void Complete(uint64_t seq, const ApiReply& reply, bool keep_alive, bool head)
      EXCLUDES(mu_);
  // Drive(); `on_reactor` if called on the connection's reactor thread,
  // which hands a connection whose socket is full over to the sweeper.
  void Run(bool on_reactor) EXCLUDES(mu_);
  // Dispatches and writes until neither makes progress. Sets blocked_.
  // Returns true if it stopped to hand over to the sweeper.
  bool PumpLocked(bool on_reactor) REQUIRES(mu_);
  bool ParsingLocked() const REQUIRES(mu_);
  // True if the bounds let the next request be dispatched now.
  bool MayDispatchLocked() const REQUIRES(mu_);
  // True if Drive() would dispatch or end something now.
  bool ShouldDriveLocked() const REQUIRES(mu_);
  void Dispatch(const HttpRequestHead& head) REQUIRES(mu_);
  void AwaitMoreLocked(const HttpRequestHead& head) REQUIRES(mu_);
  void QueueErrorLocked(int status, const char* type,
                        const std::string& message) REQUIRES(mu_);
  void QueueBytesLocked(Slot* slot, std::string bytes) REQUIRES(mu_);
  void DiscardInputLocked() REQUIRES(mu_);
  void DropSlotsLocked() REQUIRES(mu_);
  void PopFrontLocked() REQUIRES(mu_);
  // Counts `n` queued bytes as gone (written or dropped).
  void ReleaseLocked(size_t n) REQUIRES(mu_);
  void FlushLocked() REQUIRES(mu_);
  // Asks the sweeper's epoll to report when the socket takes bytes again.
  void WatchWritableLocked() REQUIRES(mu_);
  void UnwatchLocked() REQUIRES(mu_);
  void EndLocked() REQUIRES(mu_);
  void ShutLocked() REQUIRES(mu_);
  void CloseDetachedLocked() REQUIRES(mu_);
  void UpdateIdleLocked() REQUIRES(mu_);

  const std::shared_ptr<ServerShared> shared_;
  const std::string client_;  // the peer's IP address

  mutable Mutex mu_;
  int fd_ GUARDED_BY(mu_) = -1;  // Pistache's, or our dup once detached
  Phase phase_ GUARDED_BY(mu_) = Phase::kReading;
  std::string in_ GUARDED_BY(mu_);  // input; parsed up to in_pos_
  size_t in_pos_ GUARDED_BY(mu_) = 0;
  std::deque<Slot> slots_ GUARDED_BY(mu_);
  uint64_t first_seq_ GUARDED_BY(mu_) = 0;   // request number of slots_[0]
  size_t queued_bytes_ GUARDED_BY(mu_) = 0;  // ready, not yet written
  // When the socket last took bytes (or replies began to wait): with the
  // socket full, write_timeout_ms runs from here.
  int64_t write_progress_ms_ GUARDED_BY(mu_) = 0;
  // Not phases: Drive() runs (it writes at its end); a complete request
  // waits for the bounds; "100 Continue" went out for the request under
  // way; fd_ is in the sweeper's epoll set; the last write did not take
  // all it was offered.
  bool pumping_ GUARDED_BY(mu_) = false;
  bool blocked_ GUARDED_BY(mu_) = false;
  bool continue_sent_ GUARDED_BY(mu_) = false;
  bool watched_ GUARDED_BY(mu_) = false;
  bool socket_full_ GUARDED_BY(mu_) = false;
  Deadline deadline_ GUARDED_BY(mu_) = Deadline::kNone;
  int64_t deadline_ms_ GUARDED_BY(mu_) = 0;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_API_HTTP_CONNECTION_H_
