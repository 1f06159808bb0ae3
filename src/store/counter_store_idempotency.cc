// CounterStore's increments with an idempotency key (IncrementOnce()) and
// the records they keep (layout in store/idempotency.h).

#include <glog/logging.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "store/codec.h"
#include "store/counter_store.h"
#include "store/idempotency.h"
#include "store/rocks_status.h"
#include "util/metrics.h"

namespace dist_counter {

bool CounterStore::FindRecordLocked(const std::string& key, int64_t now,
                                    IdempotencyRecord* record,
                                    uint64_t* ticket) const {
  if (auto it = idem_unwritten_.find(key); it != idem_unwritten_.end()) {
    if (it->second.record.expires <= now) return false;
    *record = it->second.record;
    *ticket = it->second.ticket;
    return true;
  }
  auto it = idem_cache_.find(key);
  if (it == idem_cache_.end() || it->second.expires <= now) return false;
  *record = it->second;
  *ticket = 0;
  return true;
}

void CounterStore::CacheRecordLocked(const std::string& key,
                                     const IdempotencyRecord& record) {
  idem_cache_[key] = record;
  idem_order_.push_back(key);
  const size_t bound = std::max<size_t>(1, options_.idempotency_cache_keys);
  while (idem_order_.size() > bound) {
    // A key that came back later was pushed again: dropping it early only
    // costs a read.
    idem_cache_.erase(idem_order_.front());
    idem_order_.pop_front();
  }
}

void CounterStore::AddRecordsToBatchLocked(rocksdb::WriteBatch* batch) {
  // Deletions first: a key staged again after its failed sync is put below.
  idem_deleting_.swap(idem_deletes_);
  for (const std::string& key : idem_deleting_) {
    batch->Delete(IdempotencyDbKey(key));
  }
  for (auto& [key, unwritten] : idem_unwritten_) {
    batch->Put(IdempotencyDbKey(key),
               EncodeIdempotencyRecord(unwritten.record));
    unwritten.writing = true;
  }
}

void CounterStore::RecordsWrittenLocked(bool ok) {
  if (!ok) idem_deletes_.insert(idem_deleting_.begin(), idem_deleting_.end());
  idem_deleting_.clear();
  for (auto it = idem_unwritten_.begin(); it != idem_unwritten_.end();) {
    if (ok && it->second.writing) {
      it = idem_unwritten_.erase(it);  // on disk; still cached
    } else {
      it->second.writing = false;
      ++it;
    }
  }
}

Status CounterStore::IncrementOnce(const std::string& key,
                                   const RequestFingerprint& fingerprint,
                                   int reply, const std::string& name,
                                   int64_t delta, IdempotentOutcome* outcome,
                                   int* recorded_reply) {
  Status s = ValidateIdempotencyKey(key);
  if (!s.ok()) return s;
  s = ValidateCounterName(name);
  if (!s.ok()) return s;
  return ApplyOnce(key, fingerprint, reply, {{name, delta}}, /*batch=*/false,
                   outcome, recorded_reply);
}

namespace {

// Why `deltas` cannot be a batch (a name is invalid), or OK.
Status CheckBatchNames(
    const std::vector<std::pair<std::string, int64_t>>& deltas) {
  for (const auto& [name, delta] : deltas) {
    Status s = ValidateCounterName(name);
    if (!s.ok()) return Status::InvalidArgument(name + ": " + s.message());
  }
  return Status::OK();
}

}  // namespace

Status CounterStore::IncrementBatchOnce(
    const std::string& key, const RequestFingerprint& fingerprint, int reply,
    const std::vector<std::pair<std::string, int64_t>>& deltas,
    IdempotentOutcome* outcome, int* recorded_reply) {
  Status s = ValidateIdempotencyKey(key);
  if (s.ok()) s = CheckBatchNames(deltas);
  if (!s.ok()) return s;
  return ApplyOnce(key, fingerprint, reply, deltas, /*batch=*/true, outcome,
                   recorded_reply);
}

void CounterStore::IncrementOnceAsync(const std::string& key,
                                      const RequestFingerprint& fingerprint,
                                      int reply, const std::string& name,
                                      int64_t delta, OnceCallback done) {
  Status s = ValidateIdempotencyKey(key);
  if (s.ok()) s = ValidateCounterName(name);
  if (!s.ok()) return done(s, IdempotentOutcome::kApplied, 0);
  ApplyOnceAsync(key, fingerprint, reply, {{name, delta}}, /*batch=*/false,
                 std::move(done));
}

void CounterStore::IncrementBatchOnceAsync(
    const std::string& key, const RequestFingerprint& fingerprint, int reply,
    const std::vector<std::pair<std::string, int64_t>>& deltas,
    OnceCallback done) {
  Status s = ValidateIdempotencyKey(key);
  if (s.ok()) s = CheckBatchNames(deltas);
  if (!s.ok()) return done(s, IdempotentOutcome::kApplied, 0);
  ApplyOnceAsync(key, fingerprint, reply, deltas, /*batch=*/true,
                 std::move(done));
}

void CounterStore::ApplyOnceAsync(
    const std::string& key, const RequestFingerprint& fingerprint, int reply,
    std::vector<std::pair<std::string, int64_t>> deltas, bool batch,
    OnceCallback done) {
  // What the work leaves for the callback.
  struct Result {
    IdempotentOutcome outcome = IdempotentOutcome::kApplied;
    int reply = 0;
  };
  auto result = std::make_shared<Result>();
  PendingAck ack;
  ack.work = [this, key, fingerprint, reply, deltas = std::move(deltas), batch,
              result](PendingAck* self) {
    return StageOnce(key, fingerprint, reply, deltas, batch, &result->outcome,
                     &result->reply, &self->ticket, &self->increments);
  };
  ack.done = [result, done = std::move(done)](const Status& s) {
    done(s, result->outcome, result->reply);
  };
  Enqueue(std::move(ack));
}

Status CounterStore::ApplyOnce(
    const std::string& key, const RequestFingerprint& fingerprint, int reply,
    const std::vector<std::pair<std::string, int64_t>>& deltas, bool batch,
    IdempotentOutcome* outcome, int* recorded_reply) {
  uint64_t ticket = 0;
  uint64_t increments = 0;
  Status s = StageOnce(key, fingerprint, reply, deltas, batch, outcome,
                       recorded_reply, &ticket, &increments);
  if (!s.ok() || ticket == 0) return s;
  s = CommitThrough(ticket);
  if (s.ok()) MetricAdd(increments_metric_, increments);
  return s;
}

Status CounterStore::StageOnce(
    const std::string& key, const RequestFingerprint& fingerprint, int reply,
    const std::vector<std::pair<std::string, int64_t>>& deltas, bool batch,
    IdempotentOutcome* outcome, int* recorded_reply, uint64_t* ticket_out,
    uint64_t* increments) {
  *ticket_out = 0;
  *increments = 0;
  Status s;
  const int64_t now = UnixNowSeconds();
  IdempotencyRecord record;
  uint64_t wait_ticket = 0;
  bool found = false;
  {
    MutexLock lock(&mu_);
    if (closed_) return Status::IOError("store is closed");
    found = FindRecordLocked(key, now, &record, &wait_ticket);
  }
  uint64_t ticket = 0;
  if (!found) {
    // Holding write_mu_ keeps every record either on disk or in memory
    // while we look (no write moves one meanwhile).
    MutexLock write_lock(&write_mu_);
    if (db_closed_) return Status::IOError("store is closed");
    if (!db_) return Status::StorageUnavailable("RocksDB is not open");
    std::string value;
    rocksdb::Status rs =
        db_->Get(rocksdb::ReadOptions(), IdempotencyDbKey(key), &value);
    IdempotencyRecord stored;
    bool on_disk = false;
    if (rs.ok()) {
      s = DecodeIdempotencyRecord(value, &stored);
      if (!s.ok()) return s;
      on_disk = stored.expires > now;  // an expired record is absent
    } else if (!rs.IsNotFound()) {
      return Status::StorageUnavailable(
          FromRocks(rs, "reading an idempotency key").message());
    }
    MutexLock lock(&mu_);
    // Another request with this key may have come first meanwhile.
    found = FindRecordLocked(key, now, &record, &wait_ticket);
    if (!found && on_disk && idem_deletes_.count(key) == 0 &&
        idem_deleting_.count(key) == 0) {
      CacheRecordLocked(key, stored);
      record = stored;
      found = true;
    }
    if (!found) {
      s = batch ? ApplyBatchLocked(deltas, &ticket)
                : ApplyIncrementLocked(deltas[0].first, deltas[0].second,
                                       &ticket);
      if (!s.ok()) return s;
      UnwrittenRecord& unwritten = idem_unwritten_[key];
      unwritten.record = IdempotencyRecord{
          fingerprint.current, reply,
          now + std::max<int64_t>(1, options_.idempotency_window_s)};
      unwritten.ticket = options_.durable ? ticket : 0;
      unwritten.writing = false;
      CacheRecordLocked(key, unwritten.record);
    }
  }
  if (found) {
    if (!SameRequest(record, fingerprint)) {
      *outcome = IdempotentOutcome::kKeyReused;
      return Status::OK();
    }
    // The first request awaits its sync: its result is ours.
    *ticket_out = wait_ticket;
    *outcome = IdempotentOutcome::kReplayed;
    *recorded_reply = record.reply;
    return Status::OK();
  }
  if (options_.durable) {
    *ticket_out = ticket;
    *increments = deltas.size();
  }
  *outcome = IdempotentOutcome::kApplied;
  *recorded_reply = reply;
  return Status::OK();
}

size_t CounterStore::IdempotencyRecordsInMemory() const {
  MutexLock lock(&mu_);
  return idem_cache_.size() + idem_unwritten_.size();
}

Status CounterStore::TEST_CompactAll() {
  MutexLock write_lock(&write_mu_);
  if (!db_) return Status::IOError("store is closed");
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction =
      rocksdb::BottommostLevelCompaction::kForce;
  return FromRocks(db_->CompactRange(options, nullptr, nullptr), "compacting");
}

}  // namespace dist_counter
