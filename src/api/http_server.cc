#include "api/http_server.h"

#include <glog/logging.h>
#include <pistache/async.h>
#include <pistache/listener.h>
#include <pistache/net.h>
#include <pistache/peer.h>
#include <pistache/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "api/http_parser.h"
#include "api/http_status.h"
#include "api/routes.h"
#include "util/crc32.h"
#include "util/metrics.h"
#include "util/mutex.h"
#include "util/thread_annotations.h"

// Pistache's type_checkers.h defines a REQUIRES of its own; this file
// means the thread-safety annotation.
#undef REQUIRES
#define REQUIRES(...) DC_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))

namespace dist_counter {
namespace {

// Requests of one connection handed to the Api and not yet answered on the
// wire; further ones stay buffered.
constexpr size_t kMaxInFlight = 64;
// Each connection's deadlines are checked this often.
constexpr int kSweepMs = 100;
// After the reply that ends a connection, its input is read and dropped
// for this long (so that a client still sending does not get a reset that
// destroys the reply in its receive buffer), unless it closes first.
constexpr int64_t kLingerMs = 2000;
// A client that shut its write side down gets this long to read the
// replies it is owed.
constexpr int64_t kDetachedWriteMs = 5000;
// Replies gathered into one sendmsg().
constexpr size_t kMaxIov = 64;

constexpr char kConnectionKey[] = "dc.conn";

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void AppendNumber(uint64_t n, std::string* out) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof(digits), n).ptr;
  out->append(digits, static_cast<size_t>(end - digits));
}

// The bytes of `reply` on the wire: a 204 and a reply to HEAD carry no
// body (one would be read as the start of the next reply on a kept-alive
// connection); a 204 has no Content-Type or Content-Length either.
std::string Serialize(const ApiReply& reply, bool keep_alive, bool head) {
  const bool no_content = reply.status == 204;
  const bool with_body = !no_content && !head;
  std::string out;
  out.reserve(160 + reply.content_type.size() +
              (with_body ? reply.body.size() : 0));
  out += "HTTP/1.1 ";
  AppendNumber(static_cast<uint64_t>(reply.status), &out);
  out += ' ';
  out += ReasonPhrase(reply.status);
  if (!no_content) {
    out += "\r\nContent-Type: ";
    out += reply.content_type;
  }
  out += "\r\nX-SFN-CRC32: ";
  AppendNumber(Crc32(reply.body), &out);
  out += keep_alive ? "\r\nConnection: Keep-Alive" : "\r\nConnection: Close";
  for (const auto& header : reply.headers) {
    out += "\r\n";
    out += header.first;
    out += ": ";
    out += header.second;
  }
  if (!no_content) {
    out += "\r\nContent-Length: ";
    AppendNumber(reply.body.size(), &out);
  }
  out += "\r\n\r\n";
  if (with_body) out += reply.body;
  return out;
}

std::string ErrorBytes(int status, const char* type,
                       const std::string& message) {
  ApiReply reply;
  ReplyError(status, type, message, &reply);
  return Serialize(reply, /*keep_alive=*/false, /*head=*/false);
}

}  // namespace

// Counts replies owed (requests handed to the Api and not yet written or
// dropped), so that Shutdown() can wait for them. Thread-safe; mu_ is a
// leaf lock.
class PendingReplies {
 public:
  // Registers a reply owed and returns true, or returns false once Close()
  // was called.
  bool Begin() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    if (closing_) return false;
    ++count_;
    return true;
  }

  // Ends what Begin() registered, whether the reply was written or dropped.
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

 private:
  mutable Mutex mu_;
  CondVar idle_;  // signalled when count_ drops to 0
  int64_t count_ GUARDED_BY(mu_) = 0;
  bool closing_ GUARDED_BY(mu_) = false;
};

// Counts open client connections against the cap.
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

class HttpConnection;

// What the handler's copies (one per reactor thread), the connections and
// the sweeper share. Fields above `mu` are set before the server starts,
// then constant.
struct ServerShared {
  Api* api = nullptr;
  HttpParseLimits limits;
  int64_t header_timeout_ms = 0;
  int64_t body_timeout_ms = 0;
  int64_t keepalive_timeout_ms = 0;
  size_t max_buffered = 0;  // unparsed input one connection may hold
  PendingReplies pending;
  ConnectionLimit limit;
  // A clock updated by the sweeper every kSweepMs, read for deadlines.
  std::atomic<int64_t> now_ms{0};

  Mutex mu;      // a leaf
  CondVar wake;  // the sweeper waits on it
  // Open connections (and ones still writing after the client's close).
  std::unordered_map<HttpConnection*, std::shared_ptr<HttpConnection>>
      connections GUARDED_BY(mu);
  // Connections whose paused parsing may resume (replies drained).
  std::vector<std::weak_ptr<HttpConnection>> kicked GUARDED_BY(mu);
  bool stopping GUARDED_BY(mu) = false;

  void Register(const std::shared_ptr<HttpConnection>& c) EXCLUDES(mu) {
    MutexLock lock(&mu);
    connections.emplace(c.get(), c);
  }
  void Unregister(HttpConnection* c) EXCLUDES(mu) {
    MutexLock lock(&mu);
    connections.erase(c);
  }
  // Asks the sweeper to resume `c`'s parsing at once.
  void Kick(std::weak_ptr<HttpConnection> c) EXCLUDES(mu) {
    MutexLock lock(&mu);
    kicked.push_back(std::move(c));
    wake.Signal();
  }
};

// One client connection: its unparsed input, and its replies in request
// order (slots), each written once it and all before it are ready.
//
// Threads: the connection's reactor thread (input, Pistache's writes, its
// disconnection), any thread that completes a reply (the reactor itself
// for most routes, the store's commit thread, the consistent-read
// threads), the sweeper, and Shutdown(). Everything mutable is guarded by
// mu. Requests are parsed and handed to the Api only on the reactor thread
// or the sweeper (never on a thread that completes replies: a durable
// increment handed to the store from its own commit thread would wait on
// itself). The fd is written only under mu and only while `writable`
// holds, so no thread writes to an fd Pistache has closed (and which may
// already be another connection's).
class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(std::shared_ptr<ServerShared> shared,
                 const std::shared_ptr<Pistache::Tcp::Peer>& peer)
      : shared_(std::move(shared)),
        peer_(peer),
        client_(peer->address().host()) {
    fd_ = peer->fd();
    const size_t open = shared_->limit.open.fetch_add(1) + 1;
    MetricSet(shared_->limit.open_metric, static_cast<int64_t>(open));
    const int64_t now = shared_->now_ms.load(std::memory_order_relaxed);
    deadline_kind_ = kIdle;
    deadline_ms_ = now + shared_->header_timeout_ms;
  }

  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  ~HttpConnection() {
    const size_t open = shared_->limit.open.fetch_sub(1) - 1;
    MetricSet(shared_->limit.open_metric, static_cast<int64_t>(open));
  }

  // Marks the connection refused: its input is ignored.
  void Refuse() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    input_done_ = true;
    deadline_kind_ = kNone;
  }

  // Takes bytes read by the reactor thread, then parses and dispatches
  // what is complete.
  void OnInput(const char* data, size_t size) EXCLUDES(mu_) {
    {
      MutexLock lock(&mu_);
      if (input_done_) return;  // after an error, a close, a refusal
      if (in_.size() - in_pos_ + size > shared_->max_buffered) {
        // Far more pipelined than we take in flight: answer what was
        // taken, then close.
        VLOG(1) << "connection from " << client_ << " buffered too much";
        DiscardInputLocked();
        close_when_drained_ = true;
        FlushLocked();
        return;
      }
      in_.append(data, size);
    }
    Pump();
  }

  // Pistache closed (or is closing) the fd: the client closed or reset.
  // Replies still owed are written to a duplicate of the fd if the client
  // only shut its write side down.
  void OnDisconnection() EXCLUDES(mu_) {
    bool detached = false;
    {
      MutexLock lock(&mu_);
      if (!closed_ && !slots_.empty() && !pistache_send_ && !lingering_) {
        const int dup_fd = ::dup(fd_);
        if (dup_fd >= 0) {
          fd_ = dup_fd;
          detached_ = true;
          detached = true;
          deadline_kind_ = kDetached;
          deadline_ms_ = shared_->now_ms.load(std::memory_order_relaxed) +
                         kDetachedWriteMs;
        }
      }
      if (!detached) {
        closed_ = true;
        DropSlotsLocked();
      }
    }
    if (!detached) {
      shared_->Unregister(this);
      return;
    }
    // Requests still buffered (past the in-flight bound) are answered too.
    Pump();
    MutexLock lock(&mu_);
    FlushLocked();
  }

  // Parses the complete requests buffered and hands them to the Api in
  // order, while fewer than kMaxInFlight are in flight; then writes the
  // replies ready. Runs on the reactor thread or the sweeper.
  void Pump() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    if (pumping_ || closed_) return;
    pumping_ = true;
    paused_ = false;
    for (;;) {
      while (!input_done_ && slots_.size() < kMaxInFlight &&
             in_pos_ < in_.size()) {
        HttpRequestHead head;
        const std::string_view input = std::string_view(in_).substr(in_pos_);
        const HttpParseState state =
            ParseHttpRequest(input, shared_->limits, &head);
        if (state == HttpParseState::kIncomplete) {
          AwaitMoreLocked(head);
          break;
        }
        if (state == HttpParseState::kError) {
          QueueErrorLocked(head.error_status, head.error_type,
                           head.error_message);
          break;
        }
        Dispatch(head);
      }
      const bool full = slots_.size() >= kMaxInFlight;
      FlushLocked();
      // Go on if the bound stopped parsing and writing made room.
      if (!full || closed_) break;
      if (slots_.size() >= kMaxInFlight) {
        paused_ = true;  // until replies drain
        break;
      }
    }
    if (in_pos_ == in_.size()) {
      in_.clear();
      in_pos_ = 0;
    } else if (in_pos_ > 0) {
      in_.erase(0, in_pos_);
      in_pos_ = 0;
    }
    pumping_ = false;
    FlushLocked();
  }

  // Stores the reply to request `seq` and writes what is ready. Any thread.
  void Complete(uint64_t seq, const ApiReply& reply, bool keep_alive, bool head)
      EXCLUDES(mu_) {
    std::string bytes = Serialize(reply, keep_alive, head);
    bool kick = false;
    {
      MutexLock lock(&mu_);
      if (seq < first_seq_ || seq - first_seq_ >= slots_.size()) return;
      Slot& slot = slots_[seq - first_seq_];
      slot.bytes = std::move(bytes);
      slot.ready = true;
      slot.close_after = !keep_alive;
      if (pumping_) return;  // Pump() flushes when it ends
      FlushLocked();
      // Parsing stopped at the in-flight bound; this thread may be the
      // store's, which must not take requests: the sweeper resumes.
      kick = Paused();
    }
    if (kick) shared_->Kick(weak_from_this());
  }

  // Enforces deadlines and retries a detached connection's writes. Runs on
  // the sweeper every kSweepMs.
  void Sweep(int64_t now) EXCLUDES(mu_) {
    bool pump = false;
    {
      MutexLock lock(&mu_);
      if (closed_) return;
      if (detached_) FlushLocked();
      if (closed_) return;
      pump = Paused();
      if (deadline_kind_ != kNone && now >= deadline_ms_) {
        switch (deadline_kind_) {
          case kIdle:
          case kLinger:
            // Pistache then reads EOF and closes the fd.
            ::shutdown(fd_, SHUT_RDWR);
            deadline_kind_ = kNone;
            break;
          case kHeader:
            QueueErrorLocked(408, "RequestTimeout",
                             "request headers not received in time");
            FlushLocked();
            break;
          case kBody:
            QueueErrorLocked(408, "RequestTimeout",
                             "request body not received in time");
            FlushLocked();
            break;
          case kDetached:
            CloseDetachedLocked();
            break;
          case kNone:
            break;
        }
      }
    }
    if (pump) Pump();
  }

  // Stops every write; Shutdown() calls it before Pistache goes. Closes
  // the fd if it is our duplicate. Returns true if the fd is still
  // Pistache's (and open).
  bool Close() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    if (closed_) return false;
    closed_ = true;
    DropSlotsLocked();
    if (detached_) {
      ::close(fd_);
      return false;
    }
    return true;
  }

  // The fd, for Shutdown() to close once Pistache's threads are gone.
  int fd() const EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return fd_;
  }

 private:
  enum DeadlineKind { kNone, kIdle, kHeader, kBody, kLinger, kDetached };

  // One request's reply, in request order.
  struct Slot {
    std::string bytes;         // the whole reply, once ready
    size_t written = 0;        // bytes of it already sent
    bool ready = false;        // bytes holds the reply
    bool close_after = false;  // the connection ends after it
    bool owed = true;          // counted in PendingReplies
  };

  // True if parsing stopped at the in-flight bound and may now go on.
  bool Paused() const REQUIRES(mu_) {
    return paused_ && !input_done_ && slots_.size() < kMaxInFlight && !pumping_;
  }

  // Builds the ApiRequest of a complete request, takes its slot and hands
  // it to the Api (unlocked: a synchronous route completes it at once).
  void Dispatch(const HttpRequestHead& head) REQUIRES(mu_) {
    ApiRequest request;
    request.method.assign(head.method);
    request.path.assign(head.path);
    if (!head.query.empty()) DecodeQuery(head.query, &request.query);
    request.body.assign(head.body);
    request.authorization.assign(head.authorization);
    request.has_idempotency_key = head.has_idempotency_key;
    request.idempotency_key.assign(head.idempotency_key);
    request.client = client_;
    const bool keep_alive = head.keep_alive;
    const bool is_head = head.method == "HEAD";
    in_pos_ += head.size;
    continue_sent_ = false;
    deadline_kind_ = kNone;
    if (!keep_alive) DiscardInputLocked();  // nothing after it is read
    const uint64_t seq = first_seq_ + slots_.size();
    slots_.emplace_back();
    if (!shared_->pending.Begin()) {
      // Closing: turn the request away without reaching the Api.
      Slot& slot = slots_.back();
      slot.owed = false;
      slot.ready = true;
      slot.close_after = true;
      ApiReply reply;
      ReplyError(503, "Unavailable", "shutting down", &reply);
      slot.bytes = Serialize(reply, /*keep_alive=*/false, is_head);
      DiscardInputLocked();
      return;
    }
    std::shared_ptr<HttpConnection> self = shared_from_this();
    mu_.Unlock();
    try {
      shared_->api->HandleAsync(
          request, [self, seq, keep_alive, is_head](const ApiReply& reply) {
            self->Complete(seq, reply, keep_alive, is_head);
          });
    } catch (const std::exception& e) {
      LOG(ERROR) << "answering a request failed: " << e.what();
      ApiReply reply;
      ReplyError(500, "InternalError", "internal error", &reply);
      Complete(seq, reply, /*keep_alive=*/false, is_head);
    }
    mu_.Lock();
  }

  // The request at the start of the input is incomplete: sets the header
  // or body deadline (from the request's first byte, not extended by more
  // bytes), and answers "Expect: 100-continue" once nothing is owed before.
  void AwaitMoreLocked(const HttpRequestHead& head) REQUIRES(mu_) {
    const int64_t now = shared_->now_ms.load(std::memory_order_relaxed);
    if (head.head_complete) {
      if (deadline_kind_ != kBody) {
        deadline_kind_ = kBody;
        deadline_ms_ = now + shared_->body_timeout_ms;
      }
      if (head.expect_continue && !continue_sent_ && slots_.empty()) {
        continue_sent_ = true;
        static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
        // An empty send buffer (nothing is owed) takes it whole.
        if (::send(fd_, kContinue, sizeof(kContinue) - 1,
                   MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
          VLOG(1) << "sending 100 Continue: " << std::strerror(errno);
        }
      }
    } else if (deadline_kind_ != kHeader) {
      deadline_kind_ = kHeader;
      deadline_ms_ = now + shared_->header_timeout_ms;
    }
  }

  // Queues our JSON error as the last reply; the connection closes after
  // it and its further input is ignored.
  void QueueErrorLocked(int status, const char* type,
                        const std::string& message) REQUIRES(mu_) {
    Slot slot;
    slot.bytes = ErrorBytes(status, type, message);
    slot.ready = true;
    slot.close_after = true;
    slot.owed = false;
    slots_.push_back(std::move(slot));
    DiscardInputLocked();
  }

  void DiscardInputLocked() REQUIRES(mu_) {
    input_done_ = true;
    in_.clear();
    in_pos_ = 0;
    deadline_kind_ = kNone;
  }

  // Forgets every reply (the connection is gone).
  void DropSlotsLocked() REQUIRES(mu_) {
    for (const Slot& slot : slots_) {
      if (slot.owed) shared_->pending.End();
    }
    first_seq_ += slots_.size();
    slots_.clear();
    pistache_send_ = false;
    ++send_generation_;
    DiscardInputLocked();
  }

  void PopFrontLocked() REQUIRES(mu_) {
    if (slots_.front().owed) shared_->pending.End();
    slots_.pop_front();
    ++first_seq_;
  }

  // Writes the ready replies at the front, in order, with one sendmsg()
  // per batch. What the socket does not take at once goes to Pistache's
  // write queue (which wakes its reactor when the socket drains); later
  // replies wait until that write is done. After the reply that ends the
  // connection, shuts the write side down and lingers.
  void FlushLocked() REQUIRES(mu_) {
    while (!closed_ && !pistache_send_ && !slots_.empty() &&
           slots_.front().ready) {
      iovec iov[kMaxIov];
      size_t count = 0;
      size_t total = 0;
      for (const Slot& slot : slots_) {
        if (!slot.ready || count == kMaxIov) break;
        iov[count].iov_base =
            const_cast<char*>(slot.bytes.data()) + slot.written;
        iov[count].iov_len = slot.bytes.size() - slot.written;
        total += iov[count].iov_len;
        ++count;
        if (slot.close_after) break;
      }
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = count;
      ssize_t sent = ::sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent < 0 && errno == EINTR) continue;
      if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        // The client is gone (EPIPE, ECONNRESET): drop its replies.
        VLOG(1) << "writing to " << client_ << ": " << std::strerror(errno);
        BrokenLocked();
        return;
      }
      size_t left = sent < 0 ? 0 : static_cast<size_t>(sent);
      while (left > 0) {
        Slot& front = slots_.front();
        const size_t rest = front.bytes.size() - front.written;
        if (left < rest) {
          front.written += left;
          break;
        }
        left -= rest;
        const bool close_after = front.close_after;
        PopFrontLocked();
        if (close_after) {
          EndLocked();
          return;
        }
      }
      if (static_cast<size_t>(std::max<ssize_t>(sent, 0)) == total) continue;
      // The socket is full.
      if (detached_) return;  // the sweeper retries
      HandOverFrontLocked();
      return;
    }
    if (close_when_drained_ && slots_.empty() && !closed_) EndLocked();
    // (Requests still buffered behind the in-flight bound are answered
    // first.)
    if (detached_ && slots_.empty() && !closed_ && !paused_) {
      CloseDetachedLocked();
    }
    if (!closed_ && !detached_ && !lingering_) UpdateIdleLocked();
  }

  // Queues the rest of the front reply on Pistache's write queue; its
  // promise settles on the reactor thread.
  void HandOverFrontLocked() REQUIRES(mu_) {
    std::shared_ptr<Pistache::Tcp::Peer> peer = peer_.lock();
    if (!peer) {
      BrokenLocked();
      return;
    }
    Slot& front = slots_.front();
    std::string rest = front.bytes.substr(front.written);
    const size_t size = rest.size();
    pistache_send_ = true;
    const uint64_t generation = ++send_generation_;
    std::weak_ptr<HttpConnection> weak = weak_from_this();
    try {
      peer->send(Pistache::RawBuffer(std::move(rest), size), MSG_NOSIGNAL)
          .then(
              [weak, generation](ssize_t) {
                if (auto self = weak.lock())
                  self->OnHandedOver(generation, true);
              },
              [weak, generation](std::exception_ptr) {
                if (auto self = weak.lock()) {
                  self->OnHandedOver(generation, false);
                }
              });
    } catch (const std::exception& e) {
      LOG(ERROR) << "queueing a reply failed: " << e.what();
      BrokenLocked();
    }
  }

  // Pistache wrote (or failed to write) the front reply's rest. Runs on
  // the reactor thread.
  void OnHandedOver(uint64_t generation, bool ok) EXCLUDES(mu_) {
    bool pump = false;
    {
      MutexLock lock(&mu_);
      if (!pistache_send_ || generation != send_generation_ || closed_) {
        return;
      }
      pistache_send_ = false;
      if (!ok) {
        BrokenLocked();
        return;
      }
      const bool close_after = slots_.front().close_after;
      PopFrontLocked();
      if (close_after) {
        EndLocked();
        return;
      }
      FlushLocked();
      pump = Paused();
    }
    if (pump) Pump();
  }

  // The reply that ends the connection was written: shut the write side
  // down (the client reads EOF) and read and drop its input for a while.
  void EndLocked() REQUIRES(mu_) {
    DiscardInputLocked();
    if (detached_) {
      CloseDetachedLocked();
      return;
    }
    ::shutdown(fd_, SHUT_WR);
    lingering_ = true;
    deadline_kind_ = kLinger;
    deadline_ms_ = shared_->now_ms.load(std::memory_order_relaxed) + kLingerMs;
  }

  // A write failed: nothing more can be sent.
  void BrokenLocked() REQUIRES(mu_) {
    DropSlotsLocked();
    if (detached_) {
      CloseDetachedLocked();
    } else {
      ::shutdown(fd_, SHUT_RDWR);
    }
  }

  // Closes our duplicate of a connection the client has closed.
  void CloseDetachedLocked() REQUIRES(mu_) {
    if (closed_) return;
    closed_ = true;
    DropSlotsLocked();
    ::close(fd_);
    // The registry lock is a leaf. Every caller holds a reference, so
    // `this` outlives the call.
    shared_->Unregister(this);
  }

  // Nothing is owed and nothing buffered: the keep-alive (or, before a
  // first request, the header) timeout runs from now.
  void UpdateIdleLocked() REQUIRES(mu_) {
    if (!slots_.empty() || in_pos_ < in_.size() || input_done_) {
      if (deadline_kind_ == kIdle) deadline_kind_ = kNone;
      return;
    }
    deadline_kind_ = kIdle;
    deadline_ms_ = shared_->now_ms.load(std::memory_order_relaxed) +
                   shared_->keepalive_timeout_ms;
  }

  const std::shared_ptr<ServerShared> shared_;
  const std::weak_ptr<Pistache::Tcp::Peer> peer_;
  const std::string client_;  // the peer's IP address

  mutable Mutex mu_;
  int fd_ GUARDED_BY(mu_) = -1;     // Pistache's, or our dup once detached
  std::string in_ GUARDED_BY(mu_);  // input; parsed up to in_pos_
  size_t in_pos_ GUARDED_BY(mu_) = 0;
  std::deque<Slot> slots_ GUARDED_BY(mu_);
  uint64_t first_seq_ GUARDED_BY(mu_) = 0;   // request number of slots_[0]
  bool pumping_ GUARDED_BY(mu_) = false;     // Pump() runs; flushes at its end
  bool paused_ GUARDED_BY(mu_) = false;      // parsing stopped at kMaxInFlight
  bool input_done_ GUARDED_BY(mu_) = false;  // no more requests are read
  bool close_when_drained_ GUARDED_BY(mu_) = false;
  bool continue_sent_ GUARDED_BY(mu_) = false;  // for the request under way
  bool pistache_send_ GUARDED_BY(mu_) = false;  // front reply is Pistache's
  uint64_t send_generation_ GUARDED_BY(mu_) = 0;
  bool lingering_ GUARDED_BY(mu_) = false;  // write side shut down
  bool detached_ GUARDED_BY(mu_) = false;   // fd_ is our dup
  bool closed_ GUARDED_BY(mu_) = false;     // fd_ must not be written
  DeadlineKind deadline_kind_ GUARDED_BY(mu_) = kNone;
  int64_t deadline_ms_ GUARDED_BY(mu_) = 0;
};

namespace {

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
      auto connection = std::make_shared<HttpConnection>(shared_, peer);
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

// Every kSweepMs: advances the clock, enforces the connections' deadlines;
// at once: resumes connections whose replies drained. Until `stopping`.
void RunSweeper(const std::shared_ptr<ServerShared>& shared) {
  std::vector<std::shared_ptr<HttpConnection>> snapshot;
  std::vector<std::weak_ptr<HttpConnection>> kicked;
  int64_t last_sweep = 0;
  for (;;) {
    {
      MutexLock lock(&shared->mu);
      if (shared->kicked.empty() && !shared->stopping) {
        shared->wake.WaitFor(&shared->mu, std::chrono::milliseconds(kSweepMs));
      }
      if (shared->stopping) return;
      kicked.swap(shared->kicked);
      const int64_t now = SteadyMs();
      shared->now_ms.store(now, std::memory_order_relaxed);
      if (now - last_sweep >= kSweepMs) {
        last_sweep = now;
        snapshot.reserve(shared->connections.size());
        for (const auto& entry : shared->connections) {
          snapshot.push_back(entry.second);
        }
      }
    }
    for (const auto& weak : kicked) {
      if (auto c = weak.lock()) c->Pump();
    }
    kicked.clear();
    const int64_t now = shared->now_ms.load(std::memory_order_relaxed);
    for (const auto& c : snapshot) c->Sweep(now);
    snapshot.clear();
  }
}

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
  ServerShared* shared = started->shared_.get();
  shared->api = api;
  shared->limits.max_body_bytes = options.max_body_bytes;
  shared->header_timeout_ms = options.header_timeout_ms;
  shared->body_timeout_ms = options.body_timeout_ms;
  shared->keepalive_timeout_ms = options.keepalive_timeout_ms;
  shared->max_buffered = shared->limits.max_head_bytes +
                         shared->limits.max_body_bytes + (64 << 10);
  shared->now_ms.store(SteadyMs());
  ConnectionLimit* limit = &shared->limit;
  limit->max = options.max_connections;
  ApiReply refusal;
  ReplyError(503, "Unavailable", "too many connections", &refusal);
  limit->refusal = Serialize(refusal, /*keep_alive=*/false, /*head=*/false);
  ReplyError(503, "Unavailable", "shutting down", &refusal);
  limit->closing_refusal =
      Serialize(refusal, /*keep_alive=*/false, /*head=*/false);
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
    shared_->wake.SignalAll();
    for (const auto& entry : shared_->connections) {
      connections.push_back(entry.second);
    }
  }
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
