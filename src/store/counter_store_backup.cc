// CounterStore's backups: a flush, then a RocksDB checkpoint of the live
// store under options.backup_dir (layout in store/backup.h).

#include <glog/logging.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/utilities/checkpoint.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include "store/backup.h"
#include "store/codec.h"
#include "store/counter_store.h"
#include "store/glog_logger.h"
#include "store/rocks_status.h"

namespace dist_counter {

namespace {

namespace fs = std::filesystem;

constexpr char kBackupsDisabled[] =
    "backups are disabled: start the node with --backup_dir";

// A name for a backup begun now that no directory under `root` has yet
// (complete or partial).
std::string FreshBackupName(const std::string& root) {
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count();
  const std::string base = BackupName(now_ms);
  std::string name = base;
  for (int n = 1;; ++n) {
    std::error_code ec;
    if (!fs::exists(root + "/" + name, ec) &&
        !fs::exists(root + "/" + name + ".partial", ec)) {
      return name;
    }
    name = base + "-" + std::to_string(n);
  }
}

// Opens the checkpoint in `dir` read-only and counts its counters: the
// backup opens, and says what it holds.
Status CountCounters(const std::string& dir, uint64_t* counters) {
  rocksdb::Options options;
  options.info_log = std::make_shared<GlogLogger>();
  rocksdb::DB* raw = nullptr;
  Status s = FromRocks(rocksdb::DB::OpenForReadOnly(options, dir, &raw),
                       "opening the checkpoint in " + dir);
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::DB> db(raw);
  std::unique_ptr<rocksdb::Iterator> it(
      db->NewIterator(rocksdb::ReadOptions()));
  uint64_t n = 0;
  std::string name;
  for (it->Seek(std::string(kCounterPrefix)); it->Valid(); it->Next()) {
    if (!ParseCounterKey(it->key().ToStringView(), &name)) break;
    ++n;
  }
  s = FromRocks(it->status(), "reading the checkpoint in " + dir);
  if (!s.ok()) return s;
  *counters = n;
  return Status::OK();
}

}  // namespace

Status CounterStore::CreateBackup(BackupInfo* info) {
  const std::string& root = options_.backup_dir;
  if (root.empty()) return Status::Unavailable(kBackupsDisabled);
  MutexLock backup_lock(&backup_mu_);
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) {
    return Status::IOError("creating backup dir " + root + ": " + ec.message());
  }
  const std::string name = FreshBackupName(root);
  const std::string partial = root + "/" + name + ".partial";
  BackupInfo made;
  made.name = name;
  made.path = root + "/" + name;
  {
    // Everything acknowledged so far goes to RocksDB first (synced), and
    // no write lands between that flush and the checkpoint.
    MutexLock write_lock(&write_mu_);
    Status s = FlushLocked(/*sync=*/true);
    if (!s.ok()) return s;
    if (!db_) return Status::StorageUnavailable("RocksDB is not open");
    made.actor = actor_id();
    rocksdb::Checkpoint* raw = nullptr;
    s = FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw),
                  "preparing a checkpoint");
    if (!s.ok()) return s;
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    // log_size_for_flush 0: RocksDB flushes its memtable, so the
    // checkpoint holds table files only (hard links on the same file
    // system, copies across).
    s = FromRocks(checkpoint->CreateCheckpoint(partial, 0),
                  "making a checkpoint in " + partial);
    if (!s.ok()) {
      // A failed memtable flush leaves RocksDB refusing writes until it is
      // resumed (Resume() does nothing otherwise, e.g. when only the
      // backup dir failed). If it cannot be, the store is unavailable, as
      // after a failed flush of its own, and recovers the same way.
      const Status resumed = FromRocks(db_->Resume(), "resuming RocksDB");
      if (!resumed.ok()) {
        MutexLock lock(&mu_);
        SetUnavailableLocked(s.message() + "; " + resumed.message(),
                             /*dir_lost=*/false);
      }
      return Status::IOError(s.message());
    }
  }
  Status s = CountCounters(partial, &made.counters);
  if (s.ok()) s = WriteBackupInfo(partial, made);
  if (s.ok()) {
    fs::rename(partial, made.path, ec);
    if (ec) {
      s = Status::IOError("renaming " + partial + ": " + ec.message());
    }
  }
  if (!s.ok()) {
    LOG(ERROR) << "backup " << name << " failed: " << s.ToString();
    return Status::IOError(s.message());
  }
  made.bytes = BackupBytes(made.path);
  std::vector<std::string> removed;
  s = PruneBackupDirs(root, options_.backups_to_keep, &removed);
  if (!s.ok()) LOG(WARNING) << "pruning old backups: " << s.ToString();
  LOG(INFO) << "backup " << made.path << ": " << made.counters << " counters, "
            << made.bytes << " bytes"
            << (removed.empty()
                    ? std::string()
                    : ", removed " + std::to_string(removed.size()) +
                          " older backup(s)");
  *info = std::move(made);
  return Status::OK();
}

Status CounterStore::ListBackups(std::vector<BackupInfo>* backups) const {
  if (options_.backup_dir.empty()) {
    return Status::Unavailable(kBackupsDisabled);
  }
  return ListBackupDirs(options_.backup_dir, backups);
}

}  // namespace dist_counter
