#include "store/counter_store.h"

#include <glog/logging.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <cstdio>
#include <random>

#include "store/codec.h"
#include "util/decimal.h"
#include "util/metrics.h"

namespace dist_counter {

namespace {

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::OK();
  if (s.IsNotFound()) return Status::NotFound(what);
  if (s.IsCorruption()) return Status::Corruption(what + ": " + s.ToString());
  return Status::IOError(what + ": " + s.ToString());
}

uint64_t RandomU64() {
  std::random_device device;
  std::mt19937_64 engine((static_cast<uint64_t>(device()) << 32) ^ device());
  return engine();
}

std::string RandomNodeId() {
  char hex[9];
  std::snprintf(hex, sizeof(hex), "%08x",
                static_cast<unsigned>(RandomU64() & 0xFFFFFFFFu));
  return hex;
}

}  // namespace

CounterStore::CounterStore(const StoreOptions& options) : options_(options) {}

CounterStore::~CounterStore() {
  Status s = Close();
  if (!s.ok()) LOG(ERROR) << "closing the store: " << s.ToString();
}

Status CounterStore::Open(const StoreOptions& options,
                          std::unique_ptr<CounterStore>* store) {
  if (options.data_dir.empty()) {
    return Status::InvalidArgument("data_dir is empty");
  }
  if (options.challenge_id.empty()) {
    return Status::InvalidArgument("challenge_id is empty");
  }
  std::unique_ptr<CounterStore> opened(new CounterStore(options));

  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.keep_log_file_num = 5;
  rocksdb::DB* db = nullptr;
  rocksdb::Status rs = rocksdb::DB::Open(db_options, options.data_dir, &db);
  if (!rs.ok()) {
    // RocksDB reports a LOCK file held by another process as "While lock
    // file: ..." and one held by this process as "lock hold by current
    // process". Any other error (whose text may well contain "lock", e.g.
    // in a path) is not Busy.
    const std::string text = rs.ToString();
    if (rs.IsIOError() &&
        (text.find("While lock file") != std::string::npos ||
         text.find("lock hold by current process") != std::string::npos)) {
      return Status::Busy("data dir " + options.data_dir +
                          " is in use by another process (" + text + ")");
    }
    return FromRocks(rs, "opening " + options.data_dir);
  }
  opened->db_.reset(db);

  Status s = opened->LoadIdentity();
  if (!s.ok()) return s;
  s = opened->LoadCounters();
  if (!s.ok()) return s;
  opened->instance_id_ = RandomU64() | 1;  // never 0
  opened->RegisterMetrics();
  opened->flush_thread_ =
      std::thread([raw = opened.get()] { raw->FlushLoop(); });
  if (options.durable) {
    opened->commit_thread_ =
        std::thread([raw = opened.get()] { raw->CommitLoop(); });
  }
  *store = std::move(opened);
  return Status::OK();
}

Status CounterStore::LoadIdentity() {
  rocksdb::ReadOptions read;
  std::string value;
  rocksdb::Status rs = db_->Get(read, std::string(kMetaFormatKey), &value);
  if (rs.ok() && value != kFormatVersion) {
    return Status::Corruption("data dir has format " + value +
                              ", this build reads format " +
                              std::string(kFormatVersion));
  }
  if (!rs.ok() && !rs.IsNotFound()) return FromRocks(rs, "reading format");

  rs = db_->Get(read, std::string(kMetaNodeIdKey), &node_id_);
  if (rs.IsNotFound()) {
    node_id_ = RandomNodeId();
  } else if (!rs.ok()) {
    return FromRocks(rs, "reading node id");
  } else if (node_id_.empty()) {
    return Status::Corruption("meta/node_id is empty");
  }

  uint64_t incarnation = 0;
  rs = db_->Get(read, std::string(kMetaIncarnationKey), &value);
  if (rs.ok()) {
    Status s = ParseUint64(value, &incarnation);
    if (!s.ok()) return Status::Corruption("meta/incarnation: " + value);
  } else if (!rs.IsNotFound()) {
    return FromRocks(rs, "reading incarnation");
  }
  // After a clean stop every count of the last incarnation is on disk, so
  // it may go on; after a crash some may be lost, so a new one starts.
  std::string clean_stop;
  rs = db_->Get(read, std::string(kMetaCleanStopKey), &clean_stop);
  if (!rs.ok() && !rs.IsNotFound()) return FromRocks(rs, "reading clean stop");
  const bool clean =
      rs.ok() && incarnation != 0 && clean_stop == std::to_string(incarnation);
  incarnation_ = clean ? incarnation : incarnation + 1;
  challenge_id_ = options_.challenge_id;
  actor_id_ =
      challenge_id_ + "." + std::to_string(incarnation_) + "." + node_id_;

  rs = db_->Get(read, std::string(kMetaActorsKey), &value);
  if (rs.ok()) {
    Status s = DecodeStringList(value, &peers_);
    if (!s.ok()) return Status::Corruption("meta/actors: " + s.message());
  } else if (!rs.IsNotFound()) {
    return FromRocks(rs, "reading peers");
  }

  // The new incarnation must be durable before any increment is taken
  // under it: a crash must never let a later start reuse it.
  rocksdb::WriteBatch batch;
  batch.Put(std::string(kMetaFormatKey), std::string(kFormatVersion));
  batch.Put(std::string(kMetaNodeIdKey), node_id_);
  batch.Put(std::string(kMetaChallengeIdKey), challenge_id_);
  batch.Put(std::string(kMetaIncarnationKey), std::to_string(incarnation_));
  batch.Delete(std::string(kMetaCleanStopKey));
  rocksdb::WriteOptions write;
  write.sync = true;
  return FromRocks(db_->Write(write, &batch), "writing identity");
}

Status CounterStore::LoadCounters() {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions()));
  std::lock_guard<std::mutex> lock(mu_);
  for (it->Seek(std::string(kCounterPrefix)); it->Valid(); it->Next()) {
    std::string name;
    if (!ParseCounterKey(it->key().ToStringView(), &name)) break;
    Entry entry;
    Status s = DecodeCounter(it->value().ToStringView(), &entry.state);
    if (!s.ok()) {
      return Status::Corruption("key " + it->key().ToString() + ": " +
                                s.message());
    }
    entry.seq = ++next_seq_;
    by_seq_[entry.seq] = name;
    counters_.emplace(std::move(name), std::move(entry));
  }
  return FromRocks(it->status(), "loading counters");
}

void CounterStore::RegisterMetrics() {
  Metrics* m = options_.metrics;
  if (m == nullptr) return;
  m->Describe("dist_counter_increments_total", "counter",
              "Increments applied by this node (batch items count one each).");
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
  increments_metric_ = m->Counter("dist_counter_increments_total");
  flushes_metric_ = m->Counter("dist_counter_flushes_total");
  flush_micros_metric_ = m->Counter("dist_counter_flush_seconds_total");
  flushed_counters_metric_ = m->Counter("dist_counter_flushed_counters_total");
  last_batch_metric_ = m->Gauge("dist_counter_last_flush_batch_size");
  counters_metric_ = m->Gauge("dist_counter_counters");
  merges_applied_metric_ = m->Counter("dist_counter_merge_changes_total");
  MetricSet(counters_metric_, static_cast<int64_t>(size()));
}

void CounterStore::MarkChangedLocked(const std::string& name, Entry* entry) {
  if (entry->seq != 0) by_seq_.erase(entry->seq);
  entry->seq = ++next_seq_;
  by_seq_[entry->seq] = name;
  dirty_.insert(name);
  ++ticket_;
}

Status CounterStore::ApplyIncrement(const std::string& name, int64_t delta,
                                    uint64_t* ticket) {
  Status s = ValidateCounterName(name);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return Status::IOError("store is closed");
    auto [it, inserted] = counters_.try_emplace(name);
    s = it->second.state.Add(actor_id_, delta);
    if (!s.ok()) {
      if (inserted) counters_.erase(it);
      return s;
    }
    MarkChangedLocked(name, &it->second);
    *ticket = ticket_;
    if (inserted)
      MetricSet(counters_metric_, static_cast<int64_t>(counters_.size()));
  }
  MetricAdd(increments_metric_);
  return Status::OK();
}

Status CounterStore::Increment(const std::string& name, int64_t delta) {
  uint64_t ticket = 0;
  Status s = ApplyIncrement(name, delta, &ticket);
  if (!s.ok() || !options_.durable) return s;
  return CommitThrough(ticket);
}

void CounterStore::IncrementAsync(const std::string& name, int64_t delta,
                                  DoneCallback done) {
  uint64_t ticket = 0;
  Status s = ApplyIncrement(name, delta, &ticket);
  if (!s.ok() || !options_.durable) {
    done(s);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(commit_mu_);
    if (!stop_commit_) {
      pending_.push_back(PendingAck{ticket, std::move(done)});
      commit_cv_.notify_one();
      return;
    }
  }
  done(CommitThrough(ticket));  // the commit thread is stopping
}

Status CounterStore::IncrementBatch(
    const std::vector<std::pair<std::string, int64_t>>& deltas) {
  for (const auto& [name, delta] : deltas) {
    Status s = ValidateCounterName(name);
    if (!s.ok()) return Status::InvalidArgument(name + ": " + s.message());
  }
  uint64_t ticket = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return Status::IOError("store is closed");
    // Check on copies first, so a failure leaves everything untouched even
    // when a name repeats.
    std::map<std::string, PnCounter> trial;
    for (const auto& [name, delta] : deltas) {
      auto [slot, fresh] = trial.try_emplace(name);
      if (fresh) {
        auto it = counters_.find(name);
        if (it != counters_.end()) slot->second = it->second.state;
      }
      Status s = slot->second.Add(actor_id_, delta);
      if (!s.ok()) return Status::InvalidArgument(name + ": " + s.message());
    }
    for (auto& [name, state] : trial) {
      Entry& entry = counters_[name];
      entry.state = std::move(state);
      MarkChangedLocked(name, &entry);
    }
    ticket = ticket_;
    MetricSet(counters_metric_, static_cast<int64_t>(counters_.size()));
  }
  MetricAdd(increments_metric_, deltas.size());
  if (options_.durable && !deltas.empty()) return CommitThrough(ticket);
  return Status::OK();
}

Status CounterStore::Get(const std::string& name, PnCounter* state) const {
  std::lock_guard<std::mutex> lock(mu_);
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
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return Status::IOError("store is closed");
  auto it = counters_.find(name);
  if (it != counters_.end() && it->second.state.Covers(remote)) {
    return Status::OK();
  }
  const bool inserted = it == counters_.end();
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
  std::lock_guard<std::mutex> lock(mu_);
  auto it = start_after < prefix ? counters_.lower_bound(prefix)
                                 : counters_.upper_bound(start_after);
  for (size_t taken = 0; it != counters_.end() && taken < limit;
       ++it, ++taken) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    names->push_back(it->first);
  }
}

size_t CounterStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_.size();
}

void CounterStore::ChangesSince(uint64_t since, size_t limit, size_t max_bytes,
                                std::vector<CounterChange>* changes,
                                uint64_t* next) const {
  std::lock_guard<std::mutex> lock(mu_);
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
  std::lock_guard<std::mutex> lock(mu_);
  return next_seq_;
}

Status CounterStore::SetPeers(const std::vector<std::string>& peers) {
  std::lock_guard<std::mutex> write_lock(write_mu_);
  if (!db_) return Status::IOError("store is closed");
  rocksdb::WriteOptions write;
  write.sync = true;
  Status s = FromRocks(
      db_->Put(write, std::string(kMetaActorsKey), EncodeStringList(peers)),
      "writing peers");
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  peers_ = peers;
  return Status::OK();
}

std::vector<std::string> CounterStore::Peers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peers_;
}

Status CounterStore::Flush(bool sync) {
  std::lock_guard<std::mutex> write_lock(write_mu_);
  if (!db_) return Status::IOError("store is closed");
  sync = sync || options_.durable;

  rocksdb::WriteBatch batch;
  std::set<std::string> names;
  uint64_t through = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    through = ticket_;
    names.swap(dirty_);
    for (const std::string& name : names) {
      batch.Put(CounterKey(name), EncodeCounter(counters_.at(name).state));
    }
  }
  if (names.empty()) {
    written_through_ = through;
    return Status::OK();
  }
  const auto start = std::chrono::steady_clock::now();
  rocksdb::WriteOptions write;
  write.sync = sync;
  Status s = FromRocks(db_->Write(write, &batch), "flushing counters");
  if (!s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    dirty_.insert(names.begin(), names.end());
    return s;
  }
  written_through_ = through;
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
  MetricAdd(flushes_metric_);
  MetricAdd(flush_micros_metric_, static_cast<uint64_t>(micros));
  MetricAdd(flushed_counters_metric_, names.size());
  MetricSet(last_batch_metric_, static_cast<int64_t>(names.size()));
  return Status::OK();
}

Status CounterStore::CommitThrough(uint64_t ticket) {
  {
    std::lock_guard<std::mutex> write_lock(write_mu_);
    if (written_through_ >= ticket) return Status::OK();
  }
  // Whoever gets write_mu_ first writes every pending change; the others
  // then find their ticket covered above on their own turn.
  Status s;
  for (;;) {
    s = Flush(/*sync=*/true);
    if (!s.ok()) return s;
    std::lock_guard<std::mutex> write_lock(write_mu_);
    if (written_through_ >= ticket) return Status::OK();
  }
}

void CounterStore::CommitLoop() {
  std::unique_lock<std::mutex> lock(commit_mu_);
  for (;;) {
    commit_cv_.wait(lock, [this] { return stop_commit_ || !pending_.empty(); });
    if (pending_.empty()) return;  // stopping, nothing left
    // Everything queued so far goes out in one synced write; what arrives
    // meanwhile waits for the next round.
    std::deque<PendingAck> batch;
    batch.swap(pending_);
    lock.unlock();
    uint64_t through = 0;
    for (const PendingAck& ack : batch) through = std::max(through, ack.ticket);
    const Status s = CommitThrough(through);
    for (PendingAck& ack : batch) ack.done(s);
    lock.lock();
  }
}

void CounterStore::FlushLoop() {
  const auto interval =
      std::chrono::milliseconds(std::max(1, options_.flush_interval_ms));
  std::unique_lock<std::mutex> lock(flush_mu_);
  while (!stop_flush_) {
    flush_cv_.wait_for(lock, interval, [this] { return stop_flush_; });
    if (stop_flush_) break;
    lock.unlock();
    Status s = Flush(/*sync=*/false);
    if (!s.ok()) LOG(WARNING) << "periodic flush failed: " << s.ToString();
    lock.lock();
  }
}

Status CounterStore::Close() {
  {
    std::lock_guard<std::mutex> lock(flush_mu_);
    stop_flush_ = true;
  }
  flush_cv_.notify_all();
  if (flush_thread_.joinable()) flush_thread_.join();
  {
    // The commit thread answers everything queued, then exits.
    std::lock_guard<std::mutex> lock(commit_mu_);
    stop_commit_ = true;
  }
  commit_cv_.notify_all();
  if (commit_thread_.joinable()) commit_thread_.join();

  {
    // From here on no change is accepted, so the final flush is complete.
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  Status s = Flush(/*sync=*/true);
  std::lock_guard<std::mutex> write_lock(write_mu_);
  if (!db_) return Status::OK();  // closed before
  if (s.ok()) {
    rocksdb::WriteOptions write;
    write.sync = true;
    s = FromRocks(db_->Put(write, std::string(kMetaCleanStopKey),
                           std::to_string(incarnation_)),
                  "marking the clean stop");
  }
  {
    rocksdb::Status rs = db_->Close();
    if (!rs.ok()) LOG(WARNING) << "closing RocksDB: " << rs.ToString();
    db_.reset();
  }
  return s;
}

}  // namespace dist_counter
