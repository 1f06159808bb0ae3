#include "api/http_connection.h"

#include <glog/logging.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <string_view>
#include <utility>

#include "api/http_reply.h"
#include "api/routes.h"
#include "util/metrics.h"

namespace dist_counter {
namespace {

// Requests of one connection handed to the Api and not yet answered on the
// wire; further ones stay buffered.
constexpr size_t kMaxInFlight = 64;
// After the reply that ends a connection, its input is read and dropped
// for this long (so that a client still sending does not get a reset that
// destroys the reply in its receive buffer), unless it closes first.
constexpr int64_t kLingerMs = 2000;
// On a reactor thread, a connection's requests are dispatched while its
// queued replies are under this much and its socket takes them; the
// sweeper goes on from there.
constexpr size_t kReactorShareBytes = 64 << 10;
// Replies gathered into one sendmsg().
constexpr size_t kMaxIov = 64;

}  // namespace

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool PendingReplies::Begin() {
  MutexLock lock(&mu_);
  if (closing_) return false;
  ++count_;
  return true;
}

void PendingReplies::End() {
  MutexLock lock(&mu_);
  if (--count_ == 0) idle_.SignalAll();
}

void PendingReplies::Close() {
  MutexLock lock(&mu_);
  closing_ = true;
}

bool PendingReplies::closing() const {
  MutexLock lock(&mu_);
  return closing_;
}

void PendingReplies::WaitIdle(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(&mu_);
  while (count_ > 0) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return;
    idle_.WaitFor(&mu_, deadline - now);
  }
}

void ReplyBytes::Add(size_t n) {
  const size_t queued = queued_.fetch_add(n, std::memory_order_relaxed) + n;
  size_t peak = peak_.load(std::memory_order_relaxed);
  while (queued > peak && !peak_.compare_exchange_weak(
                              peak, queued, std::memory_order_relaxed)) {
  }
}

bool ReplyBytes::Release(size_t n) {
  return queued_.fetch_sub(n, std::memory_order_relaxed) - n < total_budget;
}

void ServerShared::Register(const std::shared_ptr<HttpConnection>& c) {
  MutexLock lock(&mu);
  connections.emplace(c.get(), c);
}

void ServerShared::Unregister(HttpConnection* c) {
  MutexLock lock(&mu);
  connections.erase(c);
}

std::shared_ptr<HttpConnection> ServerShared::Find(HttpConnection* c) {
  MutexLock lock(&mu);
  auto it = connections.find(c);
  return it == connections.end() ? nullptr : it->second;
}

void ServerShared::Kick(std::weak_ptr<HttpConnection> c) {
  {
    MutexLock lock(&mu);
    kicked.push_back(std::move(c));
  }
  Wake();
}

void ServerShared::AwaitBudget(std::weak_ptr<HttpConnection> c) {
  MutexLock lock(&mu);
  budget_waiters.push_back(std::move(c));
  has_budget_waiters.store(true);
}

void ServerShared::WakeBudgetWaiters() {
  {
    MutexLock lock(&mu);
    if (budget_waiters.empty()) return;
    for (auto& waiter : budget_waiters) kicked.push_back(std::move(waiter));
    budget_waiters.clear();
    has_budget_waiters.store(false);
  }
  Wake();
}

void ServerShared::Wake() {
  const uint64_t one = 1;
  if (::write(wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN) {
    LOG_EVERY_T(ERROR, 10) << "waking the HTTP sweeper: "
                           << std::strerror(errno);
  }
}

HttpConnection::HttpConnection(std::shared_ptr<ServerShared> shared, int fd,
                               std::string client)
    : shared_(std::move(shared)), client_(std::move(client)) {
  const size_t open = shared_->limit.open.fetch_add(1) + 1;
  MetricSet(shared_->limit.open_metric, static_cast<int64_t>(open));
  MutexLock lock(&mu_);
  fd_ = fd;
  deadline_ = Deadline::kIdle;
  deadline_ms_ = shared_->now_ms.load(std::memory_order_relaxed) +
                 shared_->header_timeout_ms;
}

HttpConnection::~HttpConnection() {
  const size_t open = shared_->limit.open.fetch_sub(1) - 1;
  MetricSet(shared_->limit.open_metric, static_cast<int64_t>(open));
}

void HttpConnection::Refuse() {
  MutexLock lock(&mu_);
  phase_ = Phase::kShut;
  deadline_ = Deadline::kNone;
}

void HttpConnection::OnInput(const char* data, size_t size) {
  {
    MutexLock lock(&mu_);
    if (phase_ != Phase::kReading) return;  // lingering, shut, closing
    if (in_.size() - in_pos_ + size > shared_->max_buffered) {
      // Far more pipelined than we take in flight: answer what was taken,
      // then close.
      VLOG(1) << "connection from " << client_ << " buffered too much";
      DiscardInputLocked();
      FlushLocked();
      return;
    }
    in_.append(data, size);
  }
  Run(/*on_reactor=*/true);
}

void HttpConnection::OnDisconnection() {
  bool detached = false;
  {
    MutexLock lock(&mu_);
    UnwatchLocked();  // while fd_ is still open
    const bool answering =
        phase_ == Phase::kReading || phase_ == Phase::kDraining;
    if (answering && (!slots_.empty() || blocked_)) {
      const int dup_fd = ::dup(fd_);
      if (dup_fd >= 0) {
        fd_ = dup_fd;
        phase_ = Phase::kDetached;
        deadline_ = Deadline::kNone;
        detached = true;
      }
    }
    if (!detached) {
      DropSlotsLocked();
      phase_ = Phase::kClosed;
    }
  }
  if (!detached) {
    shared_->Unregister(this);
    return;
  }
  Run(/*on_reactor=*/true);
}

void HttpConnection::Drive() { Run(/*on_reactor=*/false); }

void HttpConnection::Run(bool on_reactor) {
  bool await_budget = false;
  bool hand_over = false;
  {
    MutexLock lock(&mu_);
    if (pumping_) return;  // that run writes and goes on at its end
    for (;;) {
      if (phase_ != Phase::kReading && phase_ != Phase::kDraining &&
          phase_ != Phase::kDetached) {
        return;
      }
      pumping_ = true;
      hand_over = PumpLocked(on_reactor);
      pumping_ = false;
      FlushLocked();  // replies other threads completed meanwhile
      if (phase_ == Phase::kDetached && slots_.empty() && !blocked_) {
        CloseDetachedLocked();  // everything read is answered
        return;
      }
      if (hand_over) break;
      if (!blocked_ || !ParsingLocked() || !MayDispatchLocked()) break;
    }
    // Stopped by the total budget alone: wait until replies drain.
    await_budget = blocked_ && ParsingLocked() &&
                   slots_.size() < kMaxInFlight && queued_bytes_ > 0 &&
                   queued_bytes_ < shared_->replies.connection_budget;
  }
  if (hand_over) {
    shared_->Kick(weak_from_this());
    return;
  }
  if (await_budget) {
    shared_->AwaitBudget(weak_from_this());
    // The total may have fallen meanwhile, with no one to wake us.
    if (!shared_->replies.Over()) shared_->WakeBudgetWaiters();
  }
}

bool HttpConnection::PumpLocked(bool on_reactor) {
  bool hand_over = false;
  for (;;) {
    blocked_ = false;
    while (ParsingLocked() && in_pos_ < in_.size()) {
      if (!MayDispatchLocked()) {
        blocked_ = true;  // until replies drain
        break;
      }
      if (on_reactor && (socket_full_ || queued_bytes_ >= kReactorShareBytes)) {
        // A client slower than its replies: the sweeper goes on, so that
        // building its replies does not hold up other connections.
        blocked_ = true;
        hand_over = true;
        break;
      }
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
    FlushLocked();
    // Go on if the bounds stopped parsing and writing made room.
    if (hand_over || !blocked_ || !ParsingLocked() || !MayDispatchLocked()) {
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
  return hand_over;
}

bool HttpConnection::ParsingLocked() const {
  return phase_ == Phase::kReading || phase_ == Phase::kDetached;
}

bool HttpConnection::MayDispatchLocked() const {
  if (slots_.size() >= kMaxInFlight) return false;
  // A client that has taken every reply may always go on.
  if (queued_bytes_ == 0) return true;
  if (queued_bytes_ >= shared_->replies.connection_budget) return false;
  return !shared_->replies.Over();
}

bool HttpConnection::ShouldDriveLocked() const {
  if (pumping_) return false;
  if (phase_ == Phase::kDetached && slots_.empty()) return true;
  return blocked_ && ParsingLocked() && MayDispatchLocked();
}

void HttpConnection::Dispatch(const HttpRequestHead& head) {
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
  deadline_ = Deadline::kNone;
  if (!keep_alive) DiscardInputLocked();  // nothing after it is read
  const uint64_t seq = first_seq_ + slots_.size();
  slots_.emplace_back();
  if (!shared_->pending.Begin()) {
    // Closing: turn the request away without reaching the Api.
    Slot& slot = slots_.back();
    slot.owed = false;
    slot.close_after = true;
    ApiReply reply;
    ReplyError(503, "Unavailable", "shutting down", &reply);
    QueueBytesLocked(&slot,
                     SerializeReply(reply, /*keep_alive=*/false, is_head));
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

void HttpConnection::Complete(uint64_t seq, const ApiReply& reply,
                              bool keep_alive, bool head) {
  std::string bytes = SerializeReply(reply, keep_alive, head);
  bool kick = false;
  {
    MutexLock lock(&mu_);
    if (seq < first_seq_ || seq - first_seq_ >= slots_.size()) return;
    Slot& slot = slots_[seq - first_seq_];
    slot.close_after = !keep_alive;
    QueueBytesLocked(&slot, std::move(bytes));
    if (pumping_) return;  // Drive() writes when it ends
    FlushLocked();
    // Parsing may go on (or a detached connection end); this thread may be
    // the store's, which must not take requests: the sweeper drives.
    kick = ShouldDriveLocked();
  }
  if (kick) shared_->Kick(weak_from_this());
}

void HttpConnection::AwaitMoreLocked(const HttpRequestHead& head) {
  const int64_t now = shared_->now_ms.load(std::memory_order_relaxed);
  if (head.head_complete) {
    if (deadline_ != Deadline::kBody) {
      deadline_ = Deadline::kBody;
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
  } else if (deadline_ != Deadline::kHeader) {
    deadline_ = Deadline::kHeader;
    deadline_ms_ = now + shared_->header_timeout_ms;
  }
}

void HttpConnection::QueueErrorLocked(int status, const char* type,
                                      const std::string& message) {
  slots_.emplace_back();
  Slot& slot = slots_.back();
  slot.close_after = true;
  slot.owed = false;
  QueueBytesLocked(&slot, SerializeError(status, type, message));
  DiscardInputLocked();
}

void HttpConnection::QueueBytesLocked(Slot* slot, std::string bytes) {
  if (queued_bytes_ == 0) write_progress_ms_ = SteadyMs();
  queued_bytes_ += bytes.size();
  shared_->replies.Add(bytes.size());
  slot->bytes = std::move(bytes);
  slot->ready = true;
}

void HttpConnection::DiscardInputLocked() {
  if (phase_ == Phase::kReading) phase_ = Phase::kDraining;
  in_.clear();
  in_pos_ = 0;
  deadline_ = Deadline::kNone;
}

void HttpConnection::DropSlotsLocked() {
  size_t queued = 0;
  for (const Slot& slot : slots_) {
    if (slot.owed) shared_->pending.End();
    if (slot.ready) queued += slot.bytes.size() - slot.written;
  }
  if (queued > 0) ReleaseLocked(queued);
  first_seq_ += slots_.size();
  slots_.clear();
  blocked_ = false;
  DiscardInputLocked();
}

void HttpConnection::PopFrontLocked() {
  if (slots_.front().owed) shared_->pending.End();
  slots_.pop_front();
  ++first_seq_;
}

void HttpConnection::ReleaseLocked(size_t n) {
  queued_bytes_ -= n;
  if (shared_->replies.Release(n) && shared_->has_budget_waiters.load()) {
    shared_->WakeBudgetWaiters();
  }
}

// Writes the ready replies at the front, in order, with one sendmsg() per
// batch, straight from the slots (no copy). What the socket does not take
// waits in the slot until the sweeper's epoll says it takes bytes again.
// After the reply that ends the connection, shuts the write side down and
// lingers.
void HttpConnection::FlushLocked() {
  if (phase_ != Phase::kReading && phase_ != Phase::kDraining &&
      phase_ != Phase::kDetached) {
    return;
  }
  while (!slots_.empty() && slots_.front().ready) {
    iovec iov[kMaxIov];
    size_t count = 0;
    size_t total = 0;
    for (const Slot& slot : slots_) {
      if (!slot.ready || count == kMaxIov) break;
      iov[count].iov_base = const_cast<char*>(slot.bytes.data()) + slot.written;
      iov[count].iov_len = slot.bytes.size() - slot.written;
      total += iov[count].iov_len;
      ++count;
      if (slot.close_after) break;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    const ssize_t sent = ::sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0 && errno == EINTR) continue;
    socket_full_ = sent < 0 || static_cast<size_t>(sent) < total;
    if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      // The client is gone (EPIPE, ECONNRESET): drop its replies.
      VLOG(1) << "writing to " << client_ << ": " << std::strerror(errno);
      ShutLocked();
      return;
    }
    size_t left = sent < 0 ? 0 : static_cast<size_t>(sent);
    if (left > 0) {
      ReleaseLocked(left);
      write_progress_ms_ = SteadyMs();
    }
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
    WatchWritableLocked();  // the socket is full
    return;
  }
  if (phase_ == Phase::kDraining && slots_.empty()) {
    EndLocked();
    return;
  }
  if (phase_ == Phase::kReading) UpdateIdleLocked();
}

void HttpConnection::WatchWritableLocked() {
  epoll_event event{};
  event.events = EPOLLOUT | EPOLLONESHOT;
  event.data.ptr = this;
  const int op = watched_ ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (::epoll_ctl(shared_->poll_fd, op, fd_, &event) != 0) {
    LOG(ERROR) << "watching a connection for writes: " << std::strerror(errno);
    ShutLocked();
    return;
  }
  watched_ = true;
}

void HttpConnection::UnwatchLocked() {
  if (!watched_) return;
  watched_ = false;
  if (::epoll_ctl(shared_->poll_fd, EPOLL_CTL_DEL, fd_, nullptr) != 0) {
    VLOG(1) << "unwatching a connection: " << std::strerror(errno);
  }
}

// The reply that ends the connection was written: shut the write side down
// (the client reads EOF) and read and drop its input for a while.
void HttpConnection::EndLocked() {
  DiscardInputLocked();
  if (phase_ == Phase::kDetached) {
    CloseDetachedLocked();
    return;
  }
  ::shutdown(fd_, SHUT_WR);
  phase_ = Phase::kLingering;
  deadline_ = Deadline::kLinger;
  deadline_ms_ = shared_->now_ms.load(std::memory_order_relaxed) + kLingerMs;
}

// A write failed or timed out: nothing more is sent or read.
void HttpConnection::ShutLocked() {
  DropSlotsLocked();
  if (phase_ == Phase::kDetached) {
    CloseDetachedLocked();
    return;
  }
  UnwatchLocked();
  ::shutdown(fd_, SHUT_RDWR);  // Pistache then reads EOF and closes the fd
  phase_ = Phase::kShut;
}

// Closes our duplicate of a connection the client has shut.
void HttpConnection::CloseDetachedLocked() {
  DropSlotsLocked();
  UnwatchLocked();
  ::close(fd_);
  phase_ = Phase::kClosed;
  // The registry lock is a leaf. Every caller holds a reference, so `this`
  // outlives the call.
  shared_->Unregister(this);
}

// Nothing is owed and nothing buffered: the keep-alive (or, before a first
// request, the header) timeout runs from now.
void HttpConnection::UpdateIdleLocked() {
  if (!slots_.empty() || in_pos_ < in_.size()) {
    if (deadline_ == Deadline::kIdle) deadline_ = Deadline::kNone;
    return;
  }
  deadline_ = Deadline::kIdle;
  deadline_ms_ = shared_->now_ms.load(std::memory_order_relaxed) +
                 shared_->keepalive_timeout_ms;
}

void HttpConnection::Sweep(int64_t now) {
  bool drive = false;
  {
    MutexLock lock(&mu_);
    if (phase_ == Phase::kClosed || phase_ == Phase::kShut) return;
    // Only a full socket counts: the client is not reading.
    if (socket_full_ && queued_bytes_ > 0 &&
        now - write_progress_ms_ >= shared_->write_timeout_ms) {
      VLOG(1) << "closing " << client_ << ": took no reply bytes for "
              << shared_->write_timeout_ms << " ms";
      ShutLocked();
      return;
    }
    if (deadline_ != Deadline::kNone && now >= deadline_ms_) {
      switch (deadline_) {
        case Deadline::kIdle:
        case Deadline::kLinger:
          // Pistache then reads EOF and closes the fd.
          ::shutdown(fd_, SHUT_RDWR);
          deadline_ = Deadline::kNone;
          break;
        case Deadline::kHeader:
          QueueErrorLocked(408, "RequestTimeout",
                           "request headers not received in time");
          FlushLocked();
          break;
        case Deadline::kBody:
          QueueErrorLocked(408, "RequestTimeout",
                           "request body not received in time");
          FlushLocked();
          break;
        case Deadline::kNone:
          break;
      }
    }
    drive = ShouldDriveLocked();
  }
  if (drive) Drive();
}

bool HttpConnection::Close() {
  MutexLock lock(&mu_);
  if (phase_ == Phase::kClosed) return false;
  DropSlotsLocked();
  UnwatchLocked();
  const bool ours = phase_ == Phase::kDetached;
  phase_ = Phase::kClosed;
  if (ours) {
    ::close(fd_);
    return false;
  }
  return true;
}

int HttpConnection::fd() const {
  MutexLock lock(&mu_);
  return fd_;
}

}  // namespace dist_counter
