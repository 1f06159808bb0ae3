// CounterStore's increments, merges and reads. Opening is in
// counter_store_open.cc, flushes and the storage health state in
// counter_store_persist.cc.

#include "store/counter_store.h"

#include <glog/logging.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>

#include "store/codec.h"
#include "store/rocks_status.h"
#include "util/metrics.h"

namespace dist_counter {

CounterStore::CounterStore(const StoreOptions& options) : options_(options) {}

CounterStore::~CounterStore() {
  Status s = Close();
  if (!s.ok()) LOG(ERROR) << "closing the store: " << s.ToString();
}

void CounterStore::RegisterMetrics() {
  Metrics* m = options_.metrics;
  if (m == nullptr) return;
  m->Describe("dist_counter_increments_total", "counter",
              "Increments applied by this node (batch items count one each).");
  m->Describe("dist_counter_resets_total", "counter",
              "Resets (DELETE) applied by this node that changed a counter.");
  m->Describe("dist_counter_flushes_total", "counter",
              "WriteBatches of dirty counters written to RocksDB.");
  m->Describe("dist_counter_flush_seconds_total", "counter",
              "Time spent writing flush WriteBatches.", 1e-6);
  m->Describe("dist_counter_flushed_counters_total", "counter",
              "Counter records written by flushes.");
  m->Describe("dist_counter_last_flush_batch_size", "gauge",
              "Counters in the last non-empty flush WriteBatch.");
  m->Describe("dist_counter_counters", "gauge", "Counters held by this node.");
  m->Describe("dist_counter_merge_changes_total", "counter",
              "Peer states that changed a local counter when merged.");
  m->Describe("dist_counter_storage_available", "gauge",
              "1 while the store can persist; 0 while increments are "
              "refused because it cannot (see the log and GET /ping).");
  m->Describe("dist_counter_storage_errors_total", "counter",
              "Failed RocksDB writes, reopens and data dir checks.");
  m->Describe("dist_counter_storage_recoveries_total", "counter",
              "Times the store became writable again after an error.");
  m->Describe("dist_counter_increments_refused_total", "counter",
              "Increments (batch items count one each) refused, by reason.");
  m->Describe("dist_counter_merges_refused_total", "counter",
              "Peer states not merged, by reason.");
  m->Describe("dist_counter_incarnation_moves_total", "counter",
              "Moves to a new incarnation because a peer held more for this "
              "node's current actor than it did (see the ERROR log).");
  incarnation_moves_metric_ =
      m->Counter("dist_counter_incarnation_moves_total");
  m->Describe("dist_counter_incarnation_moves_refused_total", "counter",
              "Moves to a new incarnation refused because one was made less "
              "than --min_incarnation_move_interval_s ago: a peer claimed "
              "more for an actor this node had just moved to (forged).");
  incarnation_moves_refused_metric_ =
      m->Counter("dist_counter_incarnation_moves_refused_total");
  increments_metric_ = m->Counter("dist_counter_increments_total");
  resets_metric_ = m->Counter("dist_counter_resets_total");
  flushes_metric_ = m->Counter("dist_counter_flushes_total");
  flush_micros_metric_ = m->Counter("dist_counter_flush_seconds_total");
  flushed_counters_metric_ = m->Counter("dist_counter_flushed_counters_total");
  last_batch_metric_ = m->Gauge("dist_counter_last_flush_batch_size");
  counters_metric_ = m->Gauge("dist_counter_counters");
  merges_applied_metric_ = m->Counter("dist_counter_merge_changes_total");
  available_metric_ = m->Gauge("dist_counter_storage_available");
  storage_errors_metric_ = m->Counter("dist_counter_storage_errors_total");
  recoveries_metric_ = m->Counter("dist_counter_storage_recoveries_total");
  refused_storage_metric_ = m->Counter("dist_counter_increments_refused_total",
                                       "reason=\"storage_unavailable\"");
  refused_quota_metric_ = m->Counter("dist_counter_increments_refused_total",
                                     "reason=\"max_counters\"");
  merges_refused_quota_metric_ = m->Counter("dist_counter_merges_refused_total",
                                            "reason=\"max_counters\"");
  merges_refused_peer_quota_metric_ = m->Counter(
      "dist_counter_merges_refused_total", "reason=\"max_peer_counters\"");
  MetricSet(counters_metric_, static_cast<int64_t>(size()));
  MetricSet(available_metric_, Health().ok() ? 1 : 0);
}

std::string CounterStore::actor_id() const {
  MutexLock lock(&mu_);
  return actor_id_;
}

uint64_t CounterStore::incarnation() const {
  MutexLock lock(&mu_);
  return incarnation_;
}

uint64_t CounterStore::FirstRefusedIncarnation() const {
  MutexLock lock(&mu_);
  return std::min(incarnation_, fresh_from_);
}

void CounterStore::KeepCreated(PnCounter* state) const {
  if (state->empty()) state->SetActor(actor_id_, ActorCounts{});
}

void CounterStore::MarkChangedLocked(const std::string& name, Entry* entry,
                                     bool dirty) {
  if (entry->seq != 0) by_seq_.erase(entry->seq);
  entry->seq = ++next_seq_;
  by_seq_[entry->seq] = name;
  if (dirty) dirty_.insert(name);
  ++ticket_;
}

std::chrono::milliseconds CounterStore::UnflushedLimit() const {
  return std::chrono::milliseconds(
      std::max<int64_t>(options_.max_unflushed_ms,
                        3 * static_cast<int64_t>(options_.flush_interval_ms)));
}

Status CounterStore::CheckWritableLocked(size_t fresh) const {
  if (!unavailable_.empty()) return Status::StorageUnavailable(unavailable_);
  if (!options_.durable) {
    const auto since = Clock::now() - last_flush_ok_;
    if (since > UnflushedLimit()) {
      return Status::StorageUnavailable(
          "no successful flush for " +
          std::to_string(
              std::chrono::duration_cast<std::chrono::milliseconds>(since)
                  .count()) +
          " ms (limit " + std::to_string(UnflushedLimit().count()) + " ms)");
    }
  }
  // Names awaiting a durable sync count as held (a few may be held
  // already): the limit errs on the side of refusing.
  if (fresh > 0 &&
      counters_.size() + staged_.size() + inflight_.size() + fresh >
          options_.max_counters) {
    return Status::ResourceExhausted(
        "this node holds its limit of " +
        std::to_string(options_.max_counters) +
        " counters (max_counters); existing counters still take increments");
  }
  return Status::OK();
}

bool CounterStore::ExistsLocked(const std::string& name) const {
  return counters_.count(name) != 0 || staged_.count(name) != 0 ||
         inflight_.count(name) != 0;
}

ActorCounts CounterStore::OwnCountsLocked(const std::string& name) const {
  if (auto it = staged_.find(name); it != staged_.end()) return it->second;
  if (auto it = inflight_.find(name); it != inflight_.end()) return it->second;
  if (auto it = counters_.find(name); it != counters_.end()) {
    auto own = it->second.state.actors().find(actor_id_);
    if (own != it->second.state.actors().end()) return own->second;
  }
  return ActorCounts{};
}

size_t CounterStore::PeerCounterLimit() const {
  if (options_.max_peer_counters != 0) return options_.max_peer_counters;
  const size_t share = options_.max_counters - options_.max_counters / 10;
  return share != 0 ? share : options_.max_counters;
}

void CounterStore::CountRefusal(const Status& status, uint64_t items) {
  if (status.IsStorageUnavailable()) MetricAdd(refused_storage_metric_, items);
  if (status.IsResourceExhausted()) MetricAdd(refused_quota_metric_, items);
}

Status CounterStore::ApplyIncrement(const std::string& name, int64_t delta,
                                    uint64_t* ticket) {
  Status s = ValidateCounterName(name);
  if (!s.ok()) return s;
  MutexLock lock(&mu_);
  return ApplyIncrementLocked(name, delta, ticket);
}

Status CounterStore::ApplyIncrementLocked(const std::string& name,
                                          int64_t delta, uint64_t* ticket) {
  if (closed_) return Status::IOError("store is closed");
  Status s = CheckWritableLocked(ExistsLocked(name) ? 0 : 1);
  if (!s.ok()) {
    CountRefusal(s, 1);
    return s;
  }
  if (options_.durable) {
    // Staged: invisible until its synced write succeeded.
    PnCounter own;
    own.SetActor(actor_id_, OwnCountsLocked(name));
    s = own.Add(actor_id_, delta);
    if (!s.ok()) return s;
    staged_[name] = own.actors().at(actor_id_);
    *ticket = ++ticket_;
    return Status::OK();
  }
  auto [it, inserted] = counters_.try_emplace(name);
  s = it->second.state.Add(actor_id_, delta);
  if (!s.ok()) {
    if (inserted) counters_.erase(it);
    return s;
  }
  KeepCreated(&it->second.state);
  MarkChangedLocked(name, &it->second);
  *ticket = ticket_;
  if (inserted)
    MetricSet(counters_metric_, static_cast<int64_t>(counters_.size()));
  MetricAdd(increments_metric_);
  return Status::OK();
}

Status CounterStore::Increment(const std::string& name, int64_t delta) {
  uint64_t ticket = 0;
  Status s = ApplyIncrement(name, delta, &ticket);
  if (!s.ok() || !options_.durable) return s;
  s = CommitThrough(ticket);
  if (s.ok()) MetricAdd(increments_metric_);
  return s;
}

void CounterStore::IncrementAsync(const std::string& name, int64_t delta,
                                  DoneCallback done) {
  uint64_t ticket = 0;
  Status s = ApplyIncrement(name, delta, &ticket);
  if (!s.ok() || !options_.durable) {
    done(s);
    return;
  }
  PendingAck ack;
  ack.ticket = ticket;
  ack.increments = 1;
  ack.done = std::move(done);
  Enqueue(std::move(ack));
}

void CounterStore::IncrementBatchAsync(
    const std::vector<std::pair<std::string, int64_t>>& deltas,
    DoneCallback done) {
  for (const auto& [name, delta] : deltas) {
    Status s = ValidateCounterName(name);
    if (!s.ok()) {
      return done(Status::InvalidArgument(name + ": " + s.message()));
    }
  }
  uint64_t ticket = 0;
  {
    MutexLock lock(&mu_);
    Status s = ApplyBatchLocked(deltas, &ticket);
    if (!s.ok()) return done(s);
  }
  if (!options_.durable || deltas.empty()) return done(Status::OK());
  PendingAck ack;
  ack.ticket = ticket;
  ack.increments = deltas.size();
  ack.done = std::move(done);
  Enqueue(std::move(ack));
}

Status CounterStore::IncrementBatch(
    const std::vector<std::pair<std::string, int64_t>>& deltas) {
  for (const auto& [name, delta] : deltas) {
    Status s = ValidateCounterName(name);
    if (!s.ok()) return Status::InvalidArgument(name + ": " + s.message());
  }
  uint64_t ticket = 0;
  {
    MutexLock lock(&mu_);
    Status s = ApplyBatchLocked(deltas, &ticket);
    if (!s.ok()) return s;
  }
  if (!options_.durable) return Status::OK();
  if (deltas.empty()) return Status::OK();
  Status s = CommitThrough(ticket);
  if (s.ok()) MetricAdd(increments_metric_, deltas.size());
  return s;
}

Status CounterStore::ApplyBatchLocked(
    const std::vector<std::pair<std::string, int64_t>>& deltas,
    uint64_t* ticket) {
  if (closed_) return Status::IOError("store is closed");
  // Check on copies first, so a failure leaves everything untouched even
  // when a name repeats. Durable mode stages this actor's totals only.
  std::map<std::string, PnCounter> trial;
  size_t fresh = 0;
  for (const auto& [name, delta] : deltas) {
    auto [slot, first] = trial.try_emplace(name);
    if (!first) continue;
    if (!ExistsLocked(name)) {
      ++fresh;
    } else if (options_.durable) {
      slot->second.SetActor(actor_id_, OwnCountsLocked(name));
    } else {
      slot->second = counters_.at(name).state;
    }
  }
  Status s = CheckWritableLocked(fresh);
  if (!s.ok()) {
    CountRefusal(s, deltas.size());
    return s;
  }
  for (const auto& [name, delta] : deltas) {
    s = trial[name].Add(actor_id_, delta);
    if (!s.ok()) return Status::InvalidArgument(name + ": " + s.message());
  }
  for (auto& [name, state] : trial) {
    if (options_.durable) {
      auto own = state.actors().find(actor_id_);
      staged_[name] = own == state.actors().end() ? ActorCounts{} : own->second;
      continue;
    }
    Entry& entry = counters_[name];
    entry.state = std::move(state);
    KeepCreated(&entry.state);
    MarkChangedLocked(name, &entry);
  }
  if (options_.durable) ++ticket_;
  *ticket = ticket_;
  MetricSet(counters_metric_, static_cast<int64_t>(counters_.size()));
  if (!options_.durable) MetricAdd(increments_metric_, deltas.size());
  return Status::OK();
}

Status CounterStore::FindResettableLocked(const std::string& name,
                                          Entry** entry) {
  if (closed_) return Status::IOError("store is closed");
  auto it = counters_.find(name);
  if (it == counters_.end()) return Status::NotFound(name);
  Status s = CheckWritableLocked(/*fresh=*/0);
  if (!s.ok()) return s;
  *entry = &it->second;
  return Status::OK();
}

Status CounterStore::Reset(const std::string& name) {
  if (options_.durable) return ResetDurable(name);
  MutexLock lock(&mu_);
  Entry* entry = nullptr;
  Status s = FindResettableLocked(name, &entry);
  if (!s.ok()) return s;
  if (entry->state.Reset()) {
    MarkChangedLocked(name, entry);
    MetricAdd(resets_metric_);
  }
  return Status::OK();
}

void CounterStore::ResetAsync(const std::string& name, DoneCallback done) {
  if (!options_.durable) return done(Reset(name));
  PendingAck ack;
  ack.work = [this, name](PendingAck*) { return ResetDurable(name); };
  ack.done = std::move(done);
  Enqueue(std::move(ack));
}

Status CounterStore::ResetDurable(const std::string& name) {
  // Holding write_mu_ keeps other writes (and so the record of `name`) out
  // until the reset is synced and published; it costs its own sync.
  MutexLock write_lock(&write_mu_);
  if (db_closed_) return Status::IOError("store is closed");
  PnCounter reset;
  {
    MutexLock lock(&mu_);
    Entry* entry = nullptr;
    Status s = FindResettableLocked(name, &entry);
    if (!s.ok()) return s;
    reset = entry->state;
  }
  if (!reset.Reset()) return Status::OK();
  if (!db_) return Status::StorageUnavailable("RocksDB is not open");
  rocksdb::WriteBatch batch;
  batch.Put(CounterKey(name), EncodeCounter(reset));
  rocksdb::WriteOptions write;
  write.sync = true;
  Status s = FromRocks(db_->Write(write, &batch), "writing a reset");
  std::string why = s.message();
  const bool dir_lost = s.ok() && DataDirLost(&why);
  MutexLock lock(&mu_);
  if (!s.ok() || dir_lost) {
    // The record may be in the WAL: the published state is rewritten
    // before writes resume.
    dirty_.insert(name);
    SetUnavailableLocked(why, dir_lost);
    return Status::StorageUnavailable(why);
  }
  // Merges since the snapshot are kept (and already dirty); counters are
  // never dropped from counters_.
  Entry& entry = counters_.at(name);
  entry.state.Merge(reset);
  MarkChangedLocked(name, &entry);
  MetricAdd(resets_metric_);
  return Status::OK();
}

Status CounterStore::Get(const std::string& name, PnCounter* state) const {
  MutexLock lock(&mu_);
  auto it = counters_.find(name);
  if (it == counters_.end()) return Status::NotFound(name);
  *state = it->second.state;
  return Status::OK();
}

Status CounterStore::Merge(const std::string& name, const PnCounter& remote,
                           bool* changed) {
  if (changed != nullptr) *changed = false;
  Status s = ValidateCounterName(name);
  if (!s.ok()) return s;
  MutexLock lock(&mu_);
  if (closed_) return Status::IOError("store is closed");
  auto it = counters_.find(name);
  if (it == counters_.end() && remote.empty()) {
    return Status::OK();  // adds nothing: creates nothing
  }
  if (it != counters_.end() && it->second.state.Covers(remote)) {
    return Status::OK();
  }
  const bool inserted = it == counters_.end();
  if (inserted && !ExistsLocked(name)) {
    // Names awaiting a durable sync count as held, as for increments.
    const size_t held = counters_.size() + staged_.size() + inflight_.size();
    const bool full = held >= options_.max_counters;
    if (full || held >= PeerCounterLimit()) {
      MetricAdd(full ? merges_refused_quota_metric_
                     : merges_refused_peer_quota_metric_);
      const auto now = Clock::now();
      if (now - last_quota_log_ >= kLogEvery) {
        last_quota_log_ = now;
        if (full) {
          LOG(WARNING) << "refusing counters from peers: this node holds its "
                          "limit of "
                       << options_.max_counters
                       << " counters (first refused: " << name << ")";
        } else {
          LOG(WARNING) << "refusing new counters from peers: this node holds "
                       << held << " counters, the most peers may create is "
                       << PeerCounterLimit()
                       << " (max_peer_counters; the rest of max_counters "
                       << options_.max_counters
                       << " is kept for this node's clients; first refused: "
                       << name << ")";
        }
      }
      return Status::ResourceExhausted(full ? "max_counters reached"
                                            : "max_peer_counters reached");
    }
  }
  if (inserted) it = counters_.try_emplace(name).first;
  it->second.state.Merge(remote);
  MarkChangedLocked(name, &it->second);
  if (inserted)
    MetricSet(counters_metric_, static_cast<int64_t>(counters_.size()));
  MetricAdd(merges_applied_metric_);
  if (changed != nullptr) *changed = true;
  return Status::OK();
}

void CounterStore::List(const std::string& prefix,
                        const std::string& start_after, size_t limit,
                        std::vector<std::string>* names) const {
  MutexLock lock(&mu_);
  auto it = start_after < prefix ? counters_.lower_bound(prefix)
                                 : counters_.upper_bound(start_after);
  for (size_t taken = 0; it != counters_.end() && taken < limit;
       ++it, ++taken) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    names->push_back(it->first);
  }
}

size_t CounterStore::size() const {
  MutexLock lock(&mu_);
  return counters_.size();
}

void CounterStore::ChangesSince(uint64_t since, size_t limit, size_t max_bytes,
                                std::vector<CounterChange>* changes,
                                uint64_t* next) const {
  MutexLock lock(&mu_);
  if (since > next_seq_) since = 0;  // not one of ours: start over
  *next = since;
  // {"name":,"state":} around each state in a page.
  constexpr size_t kChangeFramingBytes = 24;
  size_t total = 0;  // charged against max_bytes
  for (auto it = by_seq_.upper_bound(since);
       it != by_seq_.end() && changes->size() < limit; ++it) {
    const PnCounter& state = counters_.at(it->second).state;
    const size_t bytes = EncodedCounterBytes(state);
    const bool omitted = bytes > max_bytes;
    // The name and its framing count too, so a page of many small
    // counters is bounded as well.
    const size_t charge =
        (omitted ? 0 : bytes) + it->second.size() + kChangeFramingBytes;
    const size_t left = total < max_bytes ? max_bytes - total : 0;
    if (!changes->empty() && charge > left) break;  // the next page starts here
    CounterChange change{it->second, PnCounter(), bytes, omitted};
    if (!omitted) change.state = state;
    changes->push_back(std::move(change));
    total += charge;
    *next = it->first;
  }
}

uint64_t CounterStore::LatestCursor() const {
  MutexLock lock(&mu_);
  return next_seq_;
}

Status CounterStore::SetPeers(const std::vector<std::string>& peers) {
  MutexLock write_lock(&write_mu_);
  if (db_closed_) return Status::IOError("store is closed");
  {
    MutexLock lock(&mu_);
    if (!unavailable_.empty()) return Status::StorageUnavailable(unavailable_);
  }
  if (!db_) return Status::StorageUnavailable("RocksDB is not open");
  rocksdb::WriteOptions write;
  write.sync = true;
  Status s = FromRocks(
      db_->Put(write, std::string(kMetaActorsKey), EncodeStringList(peers)),
      "writing peers");
  MutexLock lock(&mu_);
  if (!s.ok()) {
    SetUnavailableLocked(s.message(), /*dir_lost=*/false);
    return Status::StorageUnavailable(s.message());
  }
  peers_ = peers;
  return Status::OK();
}

std::vector<std::string> CounterStore::Peers() const {
  MutexLock lock(&mu_);
  return peers_;
}

}  // namespace dist_counter
