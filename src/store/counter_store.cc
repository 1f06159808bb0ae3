#include "store/counter_store.h"

#include <errno.h>
#include <glog/logging.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string_view>

#include "store/codec.h"
#include "store/glog_logger.h"
#include "store/rocks_status.h"
#include "util/decimal.h"
#include "util/metrics.h"

namespace dist_counter {

namespace {

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
  if (options.max_open_files <= 0) {
    return Status::InvalidArgument("max_open_files must be positive");
  }
  std::unique_ptr<CounterStore> opened(new CounterStore(options));
  Status s = opened->Load();
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

Status CounterStore::Load() {
  MutexLock write_lock(&write_mu_);
  Status s = OpenDb(/*create=*/true);
  if (!s.ok()) return s;
  struct stat dir_stat;
  if (stat(options_.data_dir.c_str(), &dir_stat) != 0) {
    return Status::IOError("stat " + options_.data_dir + ": " +
                           std::strerror(errno));
  }
  dir_dev_ = static_cast<uint64_t>(dir_stat.st_dev);
  dir_ino_ = static_cast<uint64_t>(dir_stat.st_ino);

  uint64_t recorded = 0;
  s = LoadIdentity(&recorded);
  if (!s.ok()) return s;
  s = LoadCounters();
  if (!s.ok()) return s;
  SkipPoisonedIncarnations(recorded);
  s = WriteIdentity();
  if (!s.ok()) return s;
  MutexLock lock(&mu_);
  last_flush_ok_ = Clock::now();
  return Status::OK();
}

Status CounterStore::OpenDb(bool create) {
  rocksdb::Options db_options;
  db_options.create_if_missing = create;
  db_options.keep_log_file_num = 5;
  // Descriptors: a bounded table cache instead of every SST file open (see
  // StoreOptions::max_open_files).
  db_options.max_open_files = options_.max_open_files;
  // Not RocksDB's LOG file: it aborts the process on a full disk.
  db_options.info_log = std::make_shared<GlogLogger>();
  if (options_.TEST_env != nullptr) db_options.env = options_.TEST_env;
  rocksdb::DB* db = nullptr;
  rocksdb::Status rs = rocksdb::DB::Open(db_options, options_.data_dir, &db);
  if (!rs.ok()) {
    // RocksDB reports a LOCK file held by another process as "While lock
    // file: ..." and one held by this process as "lock hold by current
    // process". Any other error (whose text may well contain "lock", e.g.
    // in a path) is not Busy.
    const std::string text = rs.ToString();
    if (rs.IsIOError() &&
        (text.find("While lock file") != std::string::npos ||
         text.find("lock hold by current process") != std::string::npos)) {
      return Status::Busy("data dir " + options_.data_dir +
                          " is in use by another process (" + text + ")");
    }
    return FromRocks(rs, "opening " + options_.data_dir);
  }
  db_.reset(db);
  return Status::OK();
}

Status CounterStore::LoadIdentity(uint64_t* recorded) {
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
  *recorded = incarnation;
  challenge_id_ = options_.challenge_id;

  rs = db_->Get(read, std::string(kMetaActorsKey), &value);
  if (rs.ok()) {
    Status s = DecodeStringList(value, &peers_);
    if (!s.ok()) return Status::Corruption("meta/actors: " + s.message());
  } else if (!rs.IsNotFound()) {
    return FromRocks(rs, "reading peers");
  }
  return Status::OK();
}

bool CounterStore::OwnIncarnation(const std::string& actor,
                                  uint64_t* incarnation) const {
  // <challenge_id>.<incarnation>.<node_id>, read from the right: node ids
  // and incarnations hold no dots, challenge ids may.
  const std::string prefix = challenge_id_ + ".";
  const std::string suffix = "." + node_id_;
  if (actor.size() <= prefix.size() + suffix.size() ||
      actor.compare(0, prefix.size(), prefix) != 0 ||
      actor.compare(actor.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return false;
  }
  const std::string_view middle = std::string_view(actor).substr(
      prefix.size(), actor.size() - prefix.size() - suffix.size());
  // This node writes incarnations in canonical decimal only; any other
  // spelling can never equal one of its actor ids.
  if (middle.size() > 1 && middle[0] == '0') return false;
  for (char c : middle) {
    if (c < '0' || c > '9') return false;
  }
  return ParseUint64(middle, incarnation).ok();
}

void CounterStore::SkipPoisonedIncarnations(uint64_t recorded) {
  // Older versions merged any actor from peers, so a hostile peer could
  // plant this node's own future actor (say with P = 2^64-1); starting
  // under it would make every increment overflow, or hide new increments
  // behind its counts. Start above every such actor instead. (Actors up to
  // `recorded` are this node's own: the one a clean stop keeps, and those
  // from earlier runs that peers gave back.)
  uint64_t highest = 0;
  std::string where;  // the first counter holding the highest, and its actor
  std::string which;
  {
    MutexLock lock(&mu_);
    for (const auto& [name, entry] : counters_) {
      for (const auto& [actor, counts] : entry.state.actors()) {
        uint64_t incarnation = 0;
        if (!OwnIncarnation(actor, &incarnation)) continue;
        if (incarnation <= recorded) continue;
        if (!which.empty() && incarnation <= highest) continue;
        highest = incarnation;
        where = name;
        which = actor;
      }
    }
  }
  if (which.empty()) return;
  if (highest == UINT64_MAX) {
    // No incarnation is left above it: a new node id gives unused actors.
    const std::string old_node_id = node_id_;
    node_id_ = RandomNodeId();
    incarnation_ = 1;
    LOG(WARNING) << "counter " << where << " holds actor " << which
                 << ": this node's id at the highest incarnation, which it "
                    "never used (planted by a peer of an older version?); "
                    "node id "
                 << old_node_id << " is replaced by " << node_id_;
    return;
  }
  LOG(WARNING) << "counter " << where << " holds actor " << which
               << ": this node at incarnation " << highest
               << ", which it never used (planted by a peer of an older "
                  "version?); starting at incarnation "
               << highest + 1 << " instead of " << incarnation_;
  incarnation_ = highest + 1;
}

Status CounterStore::WriteIdentity() {
  actor_id_ =
      challenge_id_ + "." + std::to_string(incarnation_) + "." + node_id_;
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
  MutexLock lock(&mu_);
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
  increments_metric_ = m->Counter("dist_counter_increments_total");
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
  MetricSet(counters_metric_, static_cast<int64_t>(size()));
  MetricSet(available_metric_, Health().ok() ? 1 : 0);
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

void CounterStore::CountRefusal(const Status& status, uint64_t items) {
  if (status.IsStorageUnavailable()) MetricAdd(refused_storage_metric_, items);
  if (status.IsResourceExhausted()) MetricAdd(refused_quota_metric_, items);
}

Status CounterStore::ApplyIncrement(const std::string& name, int64_t delta,
                                    uint64_t* ticket) {
  Status s = ValidateCounterName(name);
  if (!s.ok()) return s;
  {
    MutexLock lock(&mu_);
    if (closed_) return Status::IOError("store is closed");
    s = CheckWritableLocked(ExistsLocked(name) ? 0 : 1);
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
  }
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
  {
    MutexLock lock(&commit_mu_);
    if (!stop_commit_) {
      pending_.push_back(PendingAck{ticket, std::move(done)});
      commit_cv_.Signal();
      return;
    }
  }
  s = CommitThrough(ticket);  // the commit thread is stopping
  if (s.ok()) MetricAdd(increments_metric_);
  done(s);
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
        staged_[name] =
            own == state.actors().end() ? ActorCounts{} : own->second;
        continue;
      }
      Entry& entry = counters_[name];
      entry.state = std::move(state);
      KeepCreated(&entry.state);
      MarkChangedLocked(name, &entry);
    }
    if (options_.durable) ++ticket_;
    ticket = ticket_;
    MetricSet(counters_metric_, static_cast<int64_t>(counters_.size()));
  }
  if (!options_.durable) {
    MetricAdd(increments_metric_, deltas.size());
    return Status::OK();
  }
  if (deltas.empty()) return Status::OK();
  Status s = CommitThrough(ticket);
  if (s.ok()) MetricAdd(increments_metric_, deltas.size());
  return s;
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
  if (inserted && !ExistsLocked(name) &&
      counters_.size() + staged_.size() + inflight_.size() >=
          options_.max_counters) {
    MetricAdd(merges_refused_quota_metric_);
    const auto now = Clock::now();
    if (now - last_quota_log_ >= kLogEvery) {
      last_quota_log_ = now;
      LOG(WARNING) << "refusing counters from peers: this node holds its "
                      "limit of "
                   << options_.max_counters
                   << " counters (first refused: " << name << ")";
    }
    return Status::ResourceExhausted("max_counters reached");
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
