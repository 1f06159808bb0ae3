// FaultFileSystem is a RocksDB FileSystem for tests that passes everything
// to the default (POSIX) file system until told to fail: then writes to
// files, syncs and the creation of new files fail with the chosen error, as
// on a full disk, a failing device or an exhausted descriptor table. No
// root, no tmpfs, deterministic.
//
// FaultEnv bundles one with the rocksdb::Env that a store opens with
// (StoreOptions::TEST_env).
//
// Thread-safe: SetFault() may be called while RocksDB uses the file system.

#ifndef DIST_COUNTER_TESTS_STORE_FAULT_FILE_SYSTEM_H_
#define DIST_COUNTER_TESTS_STORE_FAULT_FILE_SYSTEM_H_

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <memory>
#include <string>

namespace dist_counter {

enum class Fault {
  kNone,     // everything works
  kNoSpace,  // appends, syncs and new files fail with "No space left"
  kIOError,  // the same, with a plain I/O error
  kSync,     // only Sync/Fsync fail (the bytes are written, not synced)
  kStall,    // appends and syncs wait until the fault changes (a hung disk)
};

class FaultFileSystem : public rocksdb::FileSystemWrapper {
 public:
  FaultFileSystem();

  const char* Name() const override { return "FaultFileSystem"; }

  // From now on, fails as `fault` says (kNone: fails nothing).
  void SetFault(Fault fault) { fault_.store(fault); }
  Fault fault() const { return fault_.load(); }
  // How many operations failed because of a fault, ever.
  int failures() const { return failures_.load(); }
  // How many operations wait in a kStall right now.
  int stalled() const { return stalled_.load(); }

  // The error `fault` gives for writes (OK for kNone and, for writes other
  // than syncs, for kSync), counting it among failures(). Under kStall
  // waits until the fault changes, then answers for the new one.
  rocksdb::IOStatus WriteError();
  rocksdb::IOStatus SyncError();

  rocksdb::IOStatus NewWritableFile(
      const std::string& fname, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(
      const std::string& fname, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(
      const std::string& fname, const std::string& old_fname,
      const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override;

 private:
  std::atomic<Fault> fault_{Fault::kNone};
  std::atomic<int> failures_{0};
  std::atomic<int> stalled_{0};
};

// A FaultFileSystem and an Env over it, for StoreOptions::TEST_env. Must
// outlive every store opened with env().
class FaultEnv {
 public:
  FaultEnv();
  rocksdb::Env* env() const { return env_.get(); }
  FaultFileSystem* fs() const { return fs_.get(); }

 private:
  std::shared_ptr<FaultFileSystem> fs_;
  std::unique_ptr<rocksdb::Env> env_;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_TESTS_STORE_FAULT_FILE_SYSTEM_H_
