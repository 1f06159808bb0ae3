// CounterStore's opening: Open(), RocksDB's options, the node identity
// (incarnation, and skipping incarnations planted by peers) and loading
// the counters. The rest of the class is in counter_store.cc and
// counter_store_persist.cc.

#include <errno.h>
#include <glog/logging.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string_view>
#include <thread>

#include "crdt/actor_id.h"
#include "store/codec.h"
#include "store/counter_store.h"
#include "store/glog_logger.h"
#include "store/idempotency.h"
#include "store/rocks_status.h"
#include "util/decimal.h"

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

// InvalidArgument if `backup_dir` is `data_dir` or inside it: backups must
// outlive the data dir, and RocksDB's directory is its own.
Status CheckBackupDir(const std::string& data_dir,
                      const std::string& backup_dir) {
  std::error_code ec;
  const std::filesystem::path data =
      std::filesystem::weakly_canonical(data_dir, ec);
  if (ec) return Status::OK();  // Open() reports the data dir's own error
  const std::filesystem::path backups =
      std::filesystem::weakly_canonical(backup_dir, ec);
  if (ec) return Status::OK();  // CreateBackup() reports it
  std::string inner = backups.string();
  std::string outer = data.string();
  while (inner.size() > 1 && inner.back() == '/') inner.pop_back();
  while (outer.size() > 1 && outer.back() == '/') outer.pop_back();
  if (inner == outer || inner.rfind(outer + "/", 0) == 0) {
    return Status::InvalidArgument("backup dir " + backup_dir +
                                   " is the data dir or inside it");
  }
  return Status::OK();
}

}  // namespace

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
  if (!options.backup_dir.empty()) {
    Status s = CheckBackupDir(options.data_dir, options.backup_dir);
    if (!s.ok()) return s;
  }
  if (options.max_peer_counters > options.max_counters) {
    return Status::InvalidArgument("max_peer_counters (" +
                                   std::to_string(options.max_peer_counters) +
                                   ") is above max_counters (" +
                                   std::to_string(options.max_counters) + ")");
  }
  std::unique_ptr<CounterStore> opened(new CounterStore(options));
  Status s = opened->Load();
  if (!s.ok()) return s;
  opened->instance_id_ = RandomU64() | 1;  // never 0
  opened->RegisterMetrics();
  opened->flush_thread_ =
      std::thread([raw = opened.get()] { raw->FlushLoop(); });
  opened->commit_thread_ =
      std::thread([raw = opened.get()] { raw->CommitLoop(); });
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
  // Kept after a clean stop, the incarnation continues earlier runs'; a
  // raised one is this process's own from its first increment.
  const bool continued = incarnation_ == recorded;
  fresh_from_ = !continued                  ? incarnation_
                : incarnation_ < UINT64_MAX ? incarnation_ + 1
                                            : UINT64_MAX;
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
  // Expired idempotency records are dropped by compaction, not by a scan.
  db_options.compaction_filter = IdempotencyCompactionFilter();
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
  {
    MutexLock lock(&mu_);
    incarnation_ = clean ? incarnation : incarnation + 1;
  }
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
  MutexLock lock(&mu_);
  {
    for (const auto& [name, entry] : counters_) {
      for (const auto& [actor, counts] : entry.state.actors()) {
        uint64_t incarnation = 0;
        if (ClassifyActor(actor, challenge_id_, node_id_, &incarnation) !=
            ActorOwner::kOwn) {
          continue;
        }
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
  uint64_t incarnation = 0;
  {
    MutexLock lock(&mu_);
    actor_id_ = MakeActorId(challenge_id_, incarnation_, node_id_);
    incarnation = incarnation_;
  }
  // The new incarnation must be durable before any increment is taken
  // under it: a crash must never let a later start reuse it.
  rocksdb::WriteBatch batch;
  batch.Put(std::string(kMetaFormatKey), std::string(kFormatVersion));
  batch.Put(std::string(kMetaNodeIdKey), node_id_);
  batch.Put(std::string(kMetaChallengeIdKey), challenge_id_);
  batch.Put(std::string(kMetaIncarnationKey), std::to_string(incarnation));
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

}  // namespace dist_counter
