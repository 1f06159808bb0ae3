// CounterStore's move to a new incarnation while running, when a peer
// holds more for the current actor than this node does. Opening (and the
// incarnation chosen at a start) is in counter_store_open.cc.

#include <glog/logging.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "crdt/actor_id.h"
#include "store/backup.h"
#include "store/codec.h"
#include "store/counter_store.h"
#include "store/rocks_status.h"
#include "util/metrics.h"

namespace dist_counter {

namespace {

uint64_t SaturatingSub(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

std::string Describe(const ActorCounts& counts) {
  return "p=" + std::to_string(counts.p) + " n=" + std::to_string(counts.n);
}

}  // namespace

bool CounterStore::AboveOwnLocked(const std::string& name,
                                  const ActorCounts& counts) const {
  ActorCounts held;
  auto it = counters_.find(name);
  if (it != counters_.end()) {
    auto own = it->second.state.actors().find(actor_id_);
    if (own != it->second.state.actors().end()) held = own->second;
  }
  return counts.p > held.p || counts.n > held.n;
}

int64_t CounterStore::NowMs() const {
  if (options_.now_ms) return options_.now_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             Clock::now().time_since_epoch())
      .count();
}

Status CounterStore::CheckMoveAllowedLocked(const std::string& name,
                                            const ActorCounts& counts) {
  const int64_t interval_ms = options_.min_incarnation_move_interval_s * 1000;
  if (!moved_ || interval_ms <= 0) return Status::OK();
  const int64_t since_ms = NowMs() - last_move_ms_;
  if (since_ms >= interval_ms) return Status::OK();
  MetricAdd(incarnation_moves_refused_metric_);
  return Status::Busy(
      "a peer claims " + Describe(counts) + " for this node's actor " +
      actor_id_ + " in counter " + name + ", more than this node issued " +
      "under it; this node moved to it " + std::to_string(since_ms / 1000) +
      " s ago, so the claim is forged (or the peer confused); not moving " +
      "again for " + std::to_string((interval_ms - since_ms + 999) / 1000) +
      " s");
}

Status CounterStore::CheckPeerOwnCount(const std::string& name,
                                       const std::string& actor,
                                       const ActorCounts& counts, bool* moved) {
  if (moved != nullptr) *moved = false;
  {
    MutexLock lock(&mu_);
    if (closed_) return Status::IOError("store is closed");
    if (actor != actor_id_ || !AboveOwnLocked(name, counts))
      return Status::OK();
    Status allowed = CheckMoveAllowedLocked(name, counts);
    if (!allowed.ok()) return allowed;
  }
  MutexLock write_lock(&write_mu_);
  if (db_closed_) return Status::IOError("store is closed");
  std::string why;
  {
    // Checked again: another thread may have moved meanwhile.
    MutexLock lock(&mu_);
    if (actor != actor_id_ || !AboveOwnLocked(name, counts))
      return Status::OK();
    if (reincarnate_pending_) {
      return Status::StorageUnavailable(
          "a move to a new incarnation waits "
          "for the storage to recover");
    }
    Status allowed = CheckMoveAllowedLocked(name, counts);
    if (!allowed.ok()) return allowed;
    ActorCounts held;
    auto it = counters_.find(name);
    if (it != counters_.end()) {
      auto own = it->second.state.actors().find(actor_id_);
      if (own != it->second.state.actors().end()) held = own->second;
    }
    why = "a peer holds " + Describe(counts) + " for this node's actor " +
          actor_id_ + " in counter " + name + ", this node only " +
          Describe(held) +
          " (was the data dir copied, or put back from a snapshot?)";
  }
  Status s = ReincarnateLocked(why);
  if (s.ok() && moved != nullptr) *moved = true;
  return s;
}

Status CounterStore::ReincarnateLocked(const std::string& why) {
  uint64_t next = 0;
  std::string old_actor;
  {
    MutexLock lock(&mu_);
    old_actor = actor_id_;
    next = std::max(incarnation_ + 1, UnixMicros());
  }
  Status s =
      db_ ? Status::OK() : Status::StorageUnavailable("RocksDB is not open");
  if (s.ok()) {
    // Durable before any increment is taken under it, as at a start.
    rocksdb::WriteBatch batch;
    batch.Put(std::string(kMetaIncarnationKey), std::to_string(next));
    batch.Delete(std::string(kMetaCleanStopKey));
    rocksdb::WriteOptions write;
    write.sync = true;
    s = FromRocks(db_->Write(write, &batch), "writing a new incarnation");
  }
  std::string lost_why;
  const bool dir_lost = s.ok() && DataDirLost(&lost_why);
  MutexLock lock(&mu_);
  if (!s.ok() || dir_lost) {
    const std::string reason = dir_lost ? lost_why : s.message();
    reincarnate_pending_ = true;
    SetUnavailableLocked(reason, dir_lost);
    LOG(ERROR) << "must leave actor " << old_actor << " (" << why
               << ") but cannot write a new incarnation: " << reason
               << "; increments are refused until it is written";
    return Status::StorageUnavailable(reason);
  }
  // Durable increments still awaiting their sync were staged as the old
  // actor's totals; they move whole to the new actor, which starts at 0.
  // Nothing is in flight: this thread holds write_mu_.
  for (auto& [name, own] : staged_) {
    ActorCounts published;
    auto it = counters_.find(name);
    if (it != counters_.end()) {
      auto old = it->second.state.actors().find(old_actor);
      if (old != it->second.state.actors().end()) published = old->second;
    }
    own = ActorCounts{SaturatingSub(own.p, published.p),
                      SaturatingSub(own.n, published.n)};
  }
  incarnation_ = next;
  actor_id_ = MakeActorId(challenge_id_, incarnation_, node_id_);
  reincarnate_pending_ = false;
  moved_ = true;
  last_move_ms_ = NowMs();
  MetricAdd(incarnation_moves_metric_);
  LOG(ERROR) << "moved from actor " << old_actor << " to " << actor_id_
             << " (incarnation " << incarnation_ << "): " << why
             << ". Increments from now on count under the new actor; the "
                "old one's totals merge from peers.";
  return Status::OK();
}

}  // namespace dist_counter
