#include "store/backup.h"

#include <fcntl.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <system_error>
#include <utility>

#include "store/codec.h"
#include "store/glog_logger.h"
#include "store/rocks_status.h"
#include "util/decimal.h"

namespace dist_counter {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPartialSuffix = ".partial";

Status FsError(const std::string& what, const std::error_code& ec) {
  return Status::IOError(what + ": " + ec.message());
}

bool AllDigits(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Orders backup names by time, then by their "-<n>" suffix as a number.
std::pair<std::string, uint64_t> SortKey(const std::string& name) {
  constexpr size_t kBase = 20;
  uint64_t n = 0;
  if (name.size() > kBase + 1) {
    if (!ParseUint64(std::string_view(name).substr(kBase + 1), &n).ok()) n = 0;
  }
  return {name.substr(0, kBase), n};
}

// Syncs file or directory `path` to disk.
Status SyncPath(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("opening " + path + " to sync it");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::IOError("syncing " + path);
  return Status::OK();
}

}  // namespace

uint64_t BackupBytes(const std::string& dir) {
  uint64_t bytes = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code size_ec;
    const uintmax_t size = it->file_size(size_ec);
    if (!size_ec) bytes += size;
  }
  return bytes;
}

namespace {

// OK if `dir` is missing (*exists false) or holds nothing but perhaps
// "lost+found" (the root of a freshly made file system, e.g. a mounted
// volume); InvalidArgument if it holds anything else or is not a directory.
Status CheckEmptyDir(const std::string& dir, bool* exists) {
  std::error_code ec;
  *exists = fs::exists(dir, ec);
  if (ec) return FsError("checking " + dir, ec);
  if (!*exists) return Status::OK();
  if (!fs::is_directory(dir, ec)) {
    return Status::InvalidArgument("data dir " + dir + " is not a directory");
  }
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->path().filename() == "lost+found") continue;
    return Status::InvalidArgument(
        "data dir " + dir +
        " is not empty: a restore only fills an empty or new directory "
        "(move the old one away first)");
  }
  if (ec) return FsError("reading " + dir, ec);
  return Status::OK();
}

// Copies every regular file of `from` but BACKUP_INFO into `to`, syncing
// each and then `to`.
Status CopyFiles(const std::string& from, const std::string& to) {
  std::error_code ec;
  for (fs::directory_iterator it(from, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const std::string name = it->path().filename().string();
    if (name == kBackupInfoFile) continue;
    const std::string target = to + "/" + name;
    std::error_code copy_ec;
    fs::copy_file(it->path(), target, fs::copy_options::none, copy_ec);
    if (copy_ec) return FsError("copying " + it->path().string(), copy_ec);
    Status s = SyncPath(target);
    if (!s.ok()) return s;
  }
  if (ec) return FsError("reading " + from, ec);
  return SyncPath(to);
}

// Opens the copy in `data_dir` and sets its incarnation so that the next
// start takes a new one (see backup.h).
Status SetRestoredIncarnation(const std::string& data_dir, uint64_t* next) {
  rocksdb::Options options;
  options.create_if_missing = false;
  options.info_log = std::make_shared<GlogLogger>();
  rocksdb::DB* raw = nullptr;
  Status s = FromRocks(rocksdb::DB::Open(options, data_dir, &raw),
                       "opening the restored copy in " + data_dir);
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string value;
  rocksdb::Status rs =
      db->Get(rocksdb::ReadOptions(), std::string(kMetaNodeIdKey), &value);
  if (rs.IsNotFound()) {
    return Status::InvalidArgument(
        "the backup holds no node identity (meta/node_id): not a "
        "dist_counter data directory");
  }
  if (!rs.ok()) return FromRocks(rs, "reading the node id");
  uint64_t recorded = 0;
  rs =
      db->Get(rocksdb::ReadOptions(), std::string(kMetaIncarnationKey), &value);
  if (rs.ok()) {
    if (!ParseUint64(value, &recorded).ok()) {
      return Status::Corruption("meta/incarnation: " + value);
    }
  } else if (!rs.IsNotFound()) {
    return FromRocks(rs, "reading the incarnation");
  }
  // No clean-stop mark: the next start raises this by one.
  const uint64_t base = std::max(recorded, UnixMicros());
  if (base == UINT64_MAX) {
    return Status::Corruption("meta/incarnation is at its highest value");
  }
  rocksdb::WriteBatch batch;
  batch.Put(std::string(kMetaIncarnationKey), std::to_string(base));
  batch.Delete(std::string(kMetaCleanStopKey));
  rocksdb::WriteOptions write;
  write.sync = true;
  s = FromRocks(db->Write(write, &batch), "writing the incarnation");
  if (!s.ok()) return s;
  s = FromRocks(db->Close(), "closing the restored copy");
  if (!s.ok()) return s;
  *next = base + 1;
  return Status::OK();
}

}  // namespace

uint64_t UnixMicros() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
}

std::string BackupName(int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[96];
  std::snprintf(text, sizeof(text), "%04d%02d%02dT%02d%02d%02d.%03dZ",
                utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
                utc.tm_min, utc.tm_sec, static_cast<int>(unix_ms % 1000));
  return text;
}

bool IsBackupName(std::string_view name) {
  // 20261130T100501.123Z, then perhaps -<n>
  constexpr size_t kBase = 20;
  if (name.size() < kBase) return false;
  if (!AllDigits(name.substr(0, 8)) || name[8] != 'T' ||
      !AllDigits(name.substr(9, 6)) || name[15] != '.' ||
      !AllDigits(name.substr(16, 3)) || name[19] != 'Z') {
    return false;
  }
  if (name.size() == kBase) return true;
  return name[kBase] == '-' && AllDigits(name.substr(kBase + 1)) &&
         name.size() <= kBase + 8;
}

Status WriteBackupInfo(const std::string& dir, const BackupInfo& info) {
  const std::string path = dir + "/" + std::string(kBackupInfoFile);
  {
    std::ofstream out(path, std::ios::trunc);
    out << "counters " << info.counters << "\n"
        << "actor " << info.actor << "\n";
    out.flush();
    if (!out) return Status::IOError("writing " + path);
  }
  Status s = SyncPath(path);
  if (!s.ok()) return s;
  return SyncPath(dir);
}

Status ReadBackupInfo(const std::string& dir, BackupInfo* info) {
  const std::string path = dir + "/" + std::string(kBackupInfoFile);
  std::ifstream in(path);
  if (!in) return Status::NotFound(path);
  std::string line;
  bool counters = false;
  while (std::getline(in, line)) {
    const size_t space = line.find(' ');
    if (space == std::string::npos) continue;
    const std::string key = line.substr(0, space);
    const std::string value = line.substr(space + 1);
    if (key == "counters") {
      if (!ParseUint64(value, &info->counters).ok()) {
        return Status::Corruption(path + ": counters " + value);
      }
      counters = true;
    } else if (key == "actor") {
      info->actor = value;
    }
  }
  if (!counters) return Status::Corruption(path + ": no counters line");
  return Status::OK();
}

Status ListBackupDirs(const std::string& root,
                      std::vector<BackupInfo>* backups) {
  std::error_code ec;
  if (!fs::exists(root, ec)) {
    if (ec) return FsError("reading " + root, ec);
    return Status::OK();
  }
  std::vector<BackupInfo> found;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code dir_ec;
    if (!IsBackupName(name) || !it->is_directory(dir_ec)) continue;
    BackupInfo info;
    info.name = name;
    info.path = it->path().string();
    if (!ReadBackupInfo(info.path, &info).ok()) continue;  // not complete
    info.bytes = BackupBytes(info.path);
    found.push_back(std::move(info));
  }
  if (ec) return FsError("reading " + root, ec);
  std::sort(found.begin(), found.end(),
            [](const BackupInfo& a, const BackupInfo& b) {
              return SortKey(a.name) < SortKey(b.name);
            });
  *backups = std::move(found);
  return Status::OK();
}

Status PruneBackupDirs(const std::string& root, size_t keep,
                       std::vector<std::string>* removed) {
  keep = std::max<size_t>(keep, 1);
  std::vector<BackupInfo> backups;
  Status s = ListBackupDirs(root, &backups);
  if (!s.ok()) return s;
  std::vector<std::string> doomed;
  for (size_t i = 0; i + keep < backups.size(); ++i) {
    doomed.push_back(backups[i].name);
  }
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() > kPartialSuffix.size() &&
        name.compare(name.size() - kPartialSuffix.size(), kPartialSuffix.size(),
                     kPartialSuffix) == 0) {
      doomed.push_back(name);
    }
  }
  Status result = ec ? FsError("reading " + root, ec) : Status::OK();
  for (const std::string& name : doomed) {
    std::error_code remove_ec;
    fs::remove_all(root + "/" + name, remove_ec);
    if (remove_ec) {
      if (result.ok())
        result = FsError("removing " + root + "/" + name, remove_ec);
      continue;
    }
    if (removed != nullptr) removed->push_back(name);
  }
  return result;
}

Status RestoreBackup(const std::string& backup_dir, const std::string& data_dir,
                     uint64_t* next_incarnation) {
  std::error_code ec;
  if (!fs::exists(backup_dir + "/CURRENT", ec)) {
    return Status::InvalidArgument(backup_dir +
                                   " is not a backup (it has no CURRENT file)");
  }
  if (fs::exists(data_dir, ec) && fs::equivalent(backup_dir, data_dir, ec)) {
    return Status::InvalidArgument("the data dir is the backup itself");
  }
  bool exists = false;
  Status s = CheckEmptyDir(data_dir, &exists);
  if (!s.ok()) return s;
  if (!exists) {
    fs::create_directories(data_dir, ec);
    if (ec) return FsError("creating " + data_dir, ec);
  }
  s = CopyFiles(backup_dir, data_dir);
  if (!s.ok()) return s;
  return SetRestoredIncarnation(data_dir, next_incarnation);
}

}  // namespace dist_counter
