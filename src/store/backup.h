// Backups of a data directory: their names, listing, pruning and restoring.
// CounterStore::CreateBackup() makes them (a RocksDB checkpoint of the live
// store); this module handles them as directories and knows nothing of a
// running store.
//
// Layout under a backup root (--backup_dir):
//   <root>/<name>/          a complete backup: a RocksDB checkpoint (a data
//                           directory as of the backup) plus BACKUP_INFO
//   <root>/<name>.partial/  a backup being made, or left by a crash; never
//                           listed, removed by the next backup
// A name is the UTC time the backup began, "20261130T100501.123Z", with
// "-<n>" appended when that millisecond is taken already; names sort in
// the order the backups were made. BACKUP_INFO holds lines "counters <N>"
// and "actor <actor id>" (the node's actor when the backup was made).
//
// Restoring copies a backup into an empty (or missing) data directory and
// sets its incarnation so that the next start takes one no run of this node
// ever used: the larger of the backup's next one and the current time in
// microseconds. A backup is older than its node's later runs, which may
// have used the next few incarnations after a crash; reusing one of those
// would let peers' larger totals hide the restored node's new increments.
//
// Pure functions of the file system; safe from any thread, but two calls
// changing the same root or data directory at once are not coordinated.

#ifndef DIST_COUNTER_STORE_BACKUP_H_
#define DIST_COUNTER_STORE_BACKUP_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace dist_counter {

// The file in a backup directory that marks it complete and describes it.
inline constexpr std::string_view kBackupInfoFile = "BACKUP_INFO";

struct BackupInfo {
  std::string name;       // e.g. "20261130T100501.123Z"
  std::string path;       // <root>/<name>
  uint64_t counters = 0;  // counters in the backup
  uint64_t bytes = 0;     // size of its files (hard links count in full)
  std::string actor;      // the node's actor id when it was made
};

// The name of a backup begun at `unix_ms` (milliseconds since the epoch,
// UTC), without the "-<n>" suffix.
std::string BackupName(int64_t unix_ms);

// True if `name` has the form of a backup name (see above).
bool IsBackupName(std::string_view name);

// Stores in *backups every complete backup under `root` (directories with a
// backup name and a readable BACKUP_INFO), oldest first. A missing root is
// an empty list. Returns IOError if `root` cannot be read.
Status ListBackupDirs(const std::string& root,
                      std::vector<BackupInfo>* backups);

// Removes the oldest complete backups under `root` until at most `keep`
// (at least 1) remain, and every "<name>.partial" directory: only call it
// while no backup is being made under `root`. Appends the names removed to
// *removed (if not null). Returns IOError naming the first directory that
// could not be removed (the others are still tried).
Status PruneBackupDirs(const std::string& root, size_t keep,
                       std::vector<std::string>* removed);

// The size of the files in backup directory `dir` (0 if unreadable).
uint64_t BackupBytes(const std::string& dir);

// Writes BACKUP_INFO (synced) into backup directory `dir`.
Status WriteBackupInfo(const std::string& dir, const BackupInfo& info);

// Reads `dir`/BACKUP_INFO into info->counters and info->actor. Returns
// NotFound if there is none, Corruption if it does not parse.
Status ReadBackupInfo(const std::string& dir, BackupInfo* info);

// Copies backup directory `backup_dir` (a backup made by CreateBackup, or
// any dist_counter data directory that is not in use) into `data_dir`,
// which must be missing or empty, then writes the incarnation described
// above into the copy with a synced write. Stores in *next_incarnation the
// incarnation the next start will take. Returns InvalidArgument if
// `data_dir` is not empty, is `backup_dir`, or `backup_dir` is not a
// dist_counter data directory; Corruption if its identity does not parse;
// IOError if a copy or the write fails (the data directory may then hold
// part of the backup: empty it before trying again).
Status RestoreBackup(const std::string& backup_dir, const std::string& data_dir,
                     uint64_t* next_incarnation);

// The current time in microseconds since the epoch (wall clock): the floor
// of a new incarnation chosen at a restore or a move.
uint64_t UnixMicros();

}  // namespace dist_counter

#endif  // DIST_COUNTER_STORE_BACKUP_H_
