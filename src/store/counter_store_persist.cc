// CounterStore's write path: flushes and durable group commits, the
// storage health state and its recovery, and Close(). Opening is in
// counter_store_open.cc; increments, merges and reads in counter_store.cc.

#include <errno.h>
#include <glog/logging.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "store/codec.h"
#include "store/counter_store.h"
#include "store/rocks_status.h"
#include "util/metrics.h"

namespace dist_counter {

namespace {

// The data dir check and recovery attempts run at least this often.
constexpr std::chrono::milliseconds kHealthTick(1000);
// Failed recovery attempts back off up to this.
constexpr std::chrono::seconds kMaxRecoveryBackoff(5);
// Close() retries a failing final flush this often.
constexpr std::chrono::milliseconds kCloseRetryEvery(200);

}  // namespace

Status CounterStore::Health() const {
  MutexLock lock(&mu_);
  if (closed_) return Status::OK();  // stopping: nothing more is taken
  return CheckWritableLocked(/*fresh=*/0);
}

Status CounterStore::Flush(bool sync) {
  MutexLock write_lock(&write_mu_);
  return FlushLocked(sync);
}

Status CounterStore::FlushLocked(bool sync) {
  if (db_closed_) return Status::IOError("store is closed");
  bool recovering = false;
  {
    MutexLock lock(&mu_);
    recovering = !unavailable_.empty();
  }
  Status s = RecoverLocked();
  if (!s.ok()) {
    FailStagedLocked(s);
    return s;
  }
  // After an error everything dirty goes out synced before writes resume.
  s = WriteLocked(sync || recovering);
  if (!s.ok() || !recovering) return s;
  bool reincarnate = false;
  {
    MutexLock lock(&mu_);
    reincarnate = reincarnate_pending_;
  }
  // A move to a new incarnation that failed is made before any increment
  // is taken again.
  if (reincarnate) {
    s = ReincarnateLocked("made on recovery; it had failed");
    if (!s.ok()) return s;
  }
  MutexLock lock(&mu_);
  if (dir_lost_) return Status::StorageUnavailable(unavailable_);
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                           LogNow() - unavailable_since_)
                           .count();
  LOG(WARNING) << "storage available again after " << seconds
               << " s (was: " << unavailable_
               << "); every changed counter is written, increments are "
                  "accepted again";
  unavailable_.clear();
  MetricSet(available_metric_, 1);
  MetricAdd(recoveries_metric_);
  return Status::OK();
}

PnCounter CounterStore::StagedStateLocked(const std::string& name,
                                          const ActorCounts& own) const {
  PnCounter state;
  auto it = counters_.find(name);
  if (it != counters_.end()) state = it->second.state;
  // A staged 0 adds this actor only to a counter that has none (see
  // KeepCreated()).
  auto published = state.actors().find(actor_id_);
  if (own.p != 0 || own.n != 0 || state.empty() ||
      published != state.actors().end()) {
    // Totals come from `own`; baselines may have risen since it was staged
    // (a reset, or a peer's, published meanwhile).
    ActorCounts counts = own;
    if (published != state.actors().end()) {
      counts.bp = std::max(counts.bp, published->second.bp);
      counts.bn = std::max(counts.bn, published->second.bn);
    }
    state.SetActor(actor_id_, counts);
  }
  return state;
}

Status CounterStore::WriteLocked(bool sync) {
  rocksdb::WriteBatch batch;
  std::set<std::string> names;
  uint64_t through = 0;
  const Clock::time_point start = Clock::now();
  {
    MutexLock lock(&mu_);
    through = ticket_;
    names.swap(dirty_);
    inflight_.swap(staged_);  // inflight_ is empty between writes
    for (const std::string& name : names) {
      if (inflight_.count(name) != 0) continue;  // written below
      auto it = counters_.find(name);
      if (it == counters_.end()) {
        // A new counter whose durable sync failed: its record may have
        // reached the WAL; it must not come back.
        batch.Delete(CounterKey(name));
      } else {
        batch.Put(CounterKey(name), EncodeCounter(it->second.state));
      }
    }
    for (const auto& [name, own] : inflight_) {
      batch.Put(CounterKey(name), EncodeCounter(StagedStateLocked(name, own)));
    }
    // Idempotency records go with the increments they guard.
    AddRecordsToBatchLocked(&batch);
  }
  const size_t records = batch.Count();
  if (records == 0) {
    resolved_through_ = std::max(resolved_through_, through);
    MutexLock lock(&mu_);
    last_flush_ok_ = start;
    return Status::OK();
  }
  rocksdb::WriteOptions write;
  write.sync = sync || options_.durable;
  Status s = FromRocks(db_->Write(write, &batch), "writing counters");
  // A write "succeeds" into the open files of a removed data dir: nothing
  // written is kept then, so it counts as failed before anything is
  // published or acknowledged.
  std::string lost_why;
  const bool dir_lost = s.ok() && DataDirLost(&lost_why);
  if (!s.ok() || dir_lost) {
    const std::string why = dir_lost ? lost_why : s.message();
    const Status failure = Status::StorageUnavailable(why);
    {
      MutexLock lock(&mu_);
      dirty_.insert(names.begin(), names.end());
      RecordsWrittenLocked(/*ok=*/false);
      SetUnavailableLocked(why, dir_lost);
    }
    FailStagedLocked(failure);
    return failure;
  }
  {
    // Synced: the staged changes become visible (to reads and peers).
    MutexLock lock(&mu_);
    for (const auto& [name, own] : inflight_) {
      PnCounter state = StagedStateLocked(name, own);
      auto [it, inserted] = counters_.try_emplace(name);
      it->second.state = std::move(state);
      MarkChangedLocked(name, &it->second, /*dirty=*/false);
    }
    if (!inflight_.empty()) {
      MetricSet(counters_metric_, static_cast<int64_t>(counters_.size()));
    }
    inflight_.clear();
    RecordsWrittenLocked(/*ok=*/true);
    last_flush_ok_ = start;
  }
  resolved_through_ = through;
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                          Clock::now() - start)
                          .count();
  MetricAdd(flushes_metric_);
  MetricAdd(flush_micros_metric_, static_cast<uint64_t>(micros));
  MetricAdd(flushed_counters_metric_, records);
  MetricSet(last_batch_metric_, static_cast<int64_t>(records));
  return Status::OK();
}

void CounterStore::FailStagedLocked(const Status& status) {
  MutexLock lock(&mu_);
  // Their records may be in the WAL: rewrite the published state (or
  // delete a counter never published) before writes resume.
  for (const auto& [name, own] : staged_) dirty_.insert(name);
  for (const auto& [name, own] : inflight_) dirty_.insert(name);
  staged_.clear();
  inflight_.clear();
  // Their keys' records may be in the WAL too: they go with them.
  for (auto it = idem_unwritten_.begin(); it != idem_unwritten_.end();) {
    if (it->second.ticket == 0) {
      ++it;
      continue;
    }
    idem_cache_.erase(it->first);
    idem_deletes_.insert(it->first);
    it = idem_unwritten_.erase(it);
  }
  if (ticket_ > resolved_through_) {
    failed_tickets_.push_back(
        FailedTickets{resolved_through_ + 1, ticket_, status});
    resolved_through_ = ticket_;
  }
}

Status CounterStore::TicketResultLocked(uint64_t ticket) const {
  if (ticket > resolved_through_) {
    return Status::IOError("store closed before the sync");
  }
  for (auto it = failed_tickets_.rbegin(); it != failed_tickets_.rend(); ++it) {
    if (ticket > it->last) break;
    if (ticket >= it->first) return it->status;
  }
  return Status::OK();
}

Status CounterStore::RecoverLocked() {
  {
    MutexLock lock(&mu_);
    if (unavailable_.empty()) return Status::OK();
    if (dir_lost_) return Status::StorageUnavailable(unavailable_);
  }
  std::string why;
  if (DataDirLost(&why)) {
    MutexLock lock(&mu_);
    SetUnavailableLocked(why, /*dir_lost=*/true);
    return Status::StorageUnavailable(why);
  }
  if (db_) {
    if (db_->Resume().ok()) return Status::OK();
    // Errors RocksDB cannot resume from (a failed WAL write or sync) need
    // a new DB object; it recovers from its WAL and MANIFEST.
    rocksdb::Status rs = db_->Close();
    if (!rs.ok()) VLOG(1) << "closing RocksDB to reopen it: " << rs.ToString();
    db_.reset();
  }
  Status s = OpenDb(/*create=*/false);
  if (!s.ok()) {
    MutexLock lock(&mu_);
    SetUnavailableLocked("reopening RocksDB: " + s.message(),
                         /*dir_lost=*/false);
    return Status::StorageUnavailable(s.message());
  }
  return Status::OK();
}

void CounterStore::SetUnavailableLocked(const std::string& reason,
                                        bool dir_lost) {
  MetricAdd(storage_errors_metric_);
  MetricSet(available_metric_, 0);
  const auto now = LogNow();
  const bool entering = unavailable_.empty();
  const bool newly_lost = dir_lost && !dir_lost_;
  if (entering) unavailable_since_ = now;
  if (entering || newly_lost || now - last_error_log_ >= kLogEvery) {
    last_error_log_ = now;
    LOG(ERROR) << (entering ? "storage unavailable, refusing increments: "
                            : "storage still unavailable: ")
               << reason
               << (dir_lost || dir_lost_
                       ? "; restart the node (its data may be gone)"
                       : "; retrying in the background");
  }
  if (dir_lost_ && !newly_lost) return;  // keep the first cause
  dir_lost_ = dir_lost_ || dir_lost;
  unavailable_ = reason;
}

CounterStore::Clock::time_point CounterStore::LogNow() const {
  return options_.TEST_now ? options_.TEST_now() : Clock::now();
}

bool CounterStore::DataDirLost(std::string* why) const {
  struct stat st;
  const std::string& dir = options_.data_dir;
  if (stat(dir.c_str(), &st) != 0) {
    *why = "data dir " + dir + " is gone (" + std::strerror(errno) + ")";
    return true;
  }
  if (static_cast<uint64_t>(st.st_dev) != dir_dev_ ||
      static_cast<uint64_t>(st.st_ino) != dir_ino_) {
    *why = "data dir " + dir + " was replaced by another directory";
    return true;
  }
  if (stat((dir + "/CURRENT").c_str(), &st) != 0) {
    *why = "data dir " + dir + " lost its CURRENT file (" +
           std::strerror(errno) + ")";
    return true;
  }
  return false;
}

void CounterStore::CheckDataDir() {
  {
    MutexLock lock(&mu_);
    if (dir_lost_ || closed_) return;
  }
  std::string why;
  if (!DataDirLost(&why)) return;
  MutexLock lock(&mu_);
  SetUnavailableLocked(why, /*dir_lost=*/true);
}

Status CounterStore::CommitThrough(uint64_t ticket) {
  // Whoever gets write_mu_ first writes every staged change; the others
  // then find their ticket resolved on their own turn.
  for (;;) {
    MutexLock write_lock(&write_mu_);
    if (resolved_through_ >= ticket) return TicketResultLocked(ticket);
    Status s = FlushLocked(/*sync=*/true);
    if (!s.ok() && resolved_through_ < ticket) return s;
  }
}

void CounterStore::CommitLoop() {
  for (;;) {
    // Everything queued so far goes out in one synced write; what arrives
    // meanwhile waits for the next round.
    std::deque<PendingAck> batch;
    {
      MutexLock lock(&commit_mu_);
      while (!stop_commit_ && pending_.empty()) commit_cv_.Wait(&commit_mu_);
      if (pending_.empty()) return;  // stopping, nothing left
      batch.swap(pending_);
    }
    ResolveAcks(&batch);
  }
}

void CounterStore::Enqueue(PendingAck ack) {
  {
    MutexLock lock(&commit_mu_);
    if (!stop_commit_) {
      pending_.push_back(std::move(ack));
      commit_cv_.Signal();
      return;
    }
  }
  std::deque<PendingAck> one;  // the commit thread is stopping
  one.push_back(std::move(ack));
  ResolveAcks(&one);
}

void CounterStore::ResolveAcks(std::deque<PendingAck>* acks) {
  // The work first, so that its changes share this round's sync.
  std::vector<Status> results(acks->size());
  uint64_t through = 0;
  for (size_t i = 0; i < acks->size(); ++i) {
    PendingAck& ack = (*acks)[i];
    if (ack.work) results[i] = ack.work(&ack);
    if (results[i].ok()) through = std::max(through, ack.ticket);
  }
  const Status s = through != 0 ? CommitThrough(through) : Status::OK();
  {
    MutexLock write_lock(&write_mu_);
    for (size_t i = 0; i < acks->size(); ++i) {
      const uint64_t ticket = (*acks)[i].ticket;
      if (!results[i].ok() || ticket == 0) continue;
      results[i] = ticket <= resolved_through_ ? TicketResultLocked(ticket) : s;
    }
  }
  for (size_t i = 0; i < acks->size(); ++i) {
    PendingAck& ack = (*acks)[i];
    if (results[i].ok()) MetricAdd(increments_metric_, ack.increments);
    ack.done(results[i]);
  }
}

bool CounterStore::SleepUntil(Clock::time_point wake) {
  MutexLock lock(&flush_mu_);
  for (;;) {
    if (stop_flush_) return true;
    const auto now = Clock::now();
    if (now >= wake) return false;
    flush_cv_.WaitFor(&flush_mu_, wake - now);
  }
}

void CounterStore::FlushLoop() {
  const auto interval =
      std::chrono::milliseconds(std::max(1, options_.flush_interval_ms));
  // The data dir check and, while unavailable, recovery run this often.
  const auto tick = std::min(interval, kHealthTick);
  // Failed recoveries back off, up to a few seconds (RocksDB logs each).
  const Clock::duration max_backoff =
      std::min<Clock::duration>(kMaxRecoveryBackoff, tick * 100);
  Clock::duration backoff = tick;
  auto next_recovery = Clock::now();
  auto next_flush = Clock::now() + interval;
  for (;;) {
    if (SleepUntil(std::min(next_flush, Clock::now() + tick))) return;
    CheckDataDir();
    bool recovering = false;
    {
      MutexLock state_lock(&mu_);
      recovering = !unavailable_.empty() && !dir_lost_;
    }
    const auto now = Clock::now();
    if (recovering) {
      if (now >= next_flush) next_flush = std::max(next_flush + interval, now);
      if (now >= next_recovery) {
        Status s = Flush(/*sync=*/true);  // tries Resume() or a reopen first
        if (!s.ok()) VLOG(1) << "recovery failed: " << s.ToString();
        backoff = s.ok() ? tick : std::min(backoff * 2, max_backoff);
        next_recovery = Clock::now() + backoff;
      }
    } else if (now >= next_flush) {
      // Start to start: a flush that overran its interval is followed at
      // once by the next, so no change waits more than one interval plus
      // one flush.
      next_flush = std::max(next_flush + interval, now);
      Status s = Flush(/*sync=*/false);
      if (!s.ok()) VLOG(1) << "periodic flush failed: " << s.ToString();
      next_recovery = Clock::now() + tick;  // the first retry after a failure
      backoff = tick;
    }
  }
}

Status CounterStore::Close() {
  {
    MutexLock lock(&write_mu_);
    if (db_closed_) return Status::OK();  // closed before
  }
  {
    MutexLock lock(&flush_mu_);
    stop_flush_ = true;
  }
  flush_cv_.SignalAll();
  if (flush_thread_.joinable()) flush_thread_.join();
  {
    // The commit thread answers everything queued, then exits.
    MutexLock lock(&commit_mu_);
    stop_commit_ = true;
  }
  commit_cv_.SignalAll();
  if (commit_thread_.joinable()) commit_thread_.join();

  {
    // From here on no change is accepted, so the final flush is complete.
    MutexLock lock(&mu_);
    closed_ = true;
  }
  // A failing final write is retried for a while: the cause (a full disk)
  // may be cleared by an operator watching the log.
  const auto deadline =
      Clock::now() + std::chrono::milliseconds(options_.close_retry_ms);
  Status s = Flush(/*sync=*/true);
  while (!s.ok() && !s.IsIOError() && Clock::now() < deadline) {
    {
      MutexLock lock(&mu_);
      if (dir_lost_) break;
    }
    std::this_thread::sleep_for(
        std::min<Clock::duration>(kCloseRetryEvery, deadline - Clock::now()));
    s = Flush(/*sync=*/true);
  }
  MutexLock write_lock(&write_mu_);
  if (db_closed_) return Status::OK();  // closed by a concurrent Close()
  if (s.ok() && db_) {
    rocksdb::WriteOptions write;
    write.sync = true;
    uint64_t incarnation = 0;
    {
      MutexLock lock(&mu_);
      incarnation = incarnation_;
    }
    s = FromRocks(db_->Put(write, std::string(kMetaCleanStopKey),
                           std::to_string(incarnation)),
                  "marking the clean stop");
    // Those syncs reach a removed data dir's files just as well: the stop
    // is clean only if the dir is still the one opened.
    std::string why;
    if (s.ok() && DataDirLost(&why)) {
      MutexLock lock(&mu_);
      SetUnavailableLocked(why, /*dir_lost=*/true);
      s = Status::StorageUnavailable(why);
    }
  }
  if (db_) {
    rocksdb::Status rs = db_->Close();
    if (!rs.ok()) LOG(WARNING) << "closing RocksDB: " << rs.ToString();
    db_.reset();
  }
  db_closed_ = true;
  if (s.ok()) return s;
  size_t unwritten = 0;
  {
    MutexLock lock(&mu_);
    unwritten = dirty_.size();
  }
  return Status::StorageUnavailable(
      "final flush failed, " + std::to_string(unwritten) +
      " changed counters are not on disk: " + s.message());
}

}  // namespace dist_counter
