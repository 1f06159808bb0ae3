#include "store/fault_file_system.h"

#include <chrono>
#include <thread>
#include <utility>

namespace dist_counter {

namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

// A writable file whose writes and syncs fail while its file system says.
class FaultWritableFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultWritableFile(std::unique_ptr<rocksdb::FSWritableFile> target,
                    FaultFileSystem* fs)
      : FSWritableFileOwnerWrapper(std::move(target)), fs_(fs) {}

  IOStatus Append(const Slice& data, const IOOptions& options,
                  IODebugContext* dbg) override {
    IOStatus s = fs_->WriteError();
    return s.ok() ? target()->Append(data, options, dbg) : s;
  }
  IOStatus Append(const Slice& data, const IOOptions& options,
                  const rocksdb::DataVerificationInfo& info,
                  IODebugContext* dbg) override {
    IOStatus s = fs_->WriteError();
    return s.ok() ? target()->Append(data, options, info, dbg) : s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset,
                            const IOOptions& options,
                            IODebugContext* dbg) override {
    IOStatus s = fs_->WriteError();
    return s.ok() ? target()->PositionedAppend(data, offset, options, dbg) : s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset,
                            const IOOptions& options,
                            const rocksdb::DataVerificationInfo& info,
                            IODebugContext* dbg) override {
    IOStatus s = fs_->WriteError();
    return s.ok() ? target()->PositionedAppend(data, offset, options, info, dbg)
                  : s;
  }
  IOStatus Sync(const IOOptions& options, IODebugContext* dbg) override {
    IOStatus s = fs_->SyncError();
    return s.ok() ? target()->Sync(options, dbg) : s;
  }
  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
    IOStatus s = fs_->SyncError();
    return s.ok() ? target()->Fsync(options, dbg) : s;
  }
  IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const IOOptions& options,
                     IODebugContext* dbg) override {
    IOStatus s = fs_->SyncError();
    return s.ok() ? target()->RangeSync(offset, nbytes, options, dbg) : s;
  }

 private:
  FaultFileSystem* const fs_;  // owns nothing; outlives the file
};

}  // namespace

FaultFileSystem::FaultFileSystem()
    : FileSystemWrapper(rocksdb::FileSystem::Default()) {}

IOStatus FaultFileSystem::WriteError() {
  if (fault_.load() == Fault::kStall) {
    ++stalled_;
    while (fault_.load() == Fault::kStall) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    --stalled_;
  }
  switch (fault_.load()) {
    case Fault::kStall:  // changed back meanwhile: try again
      return WriteError();
    case Fault::kNone:
    case Fault::kSync:
      return IOStatus::OK();
    case Fault::kNoSpace:
      ++failures_;
      return IOStatus::NoSpace("injected", "No space left on device");
    case Fault::kIOError:
      ++failures_;
      return IOStatus::IOError("injected", "Input/output error");
  }
  return IOStatus::OK();
}

IOStatus FaultFileSystem::SyncError() {
  if (fault_.load() == Fault::kSync) {
    ++failures_;
    return IOStatus::IOError("injected", "sync failed");
  }
  return WriteError();
}

IOStatus FaultFileSystem::NewWritableFile(
    const std::string& fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, IODebugContext* dbg) {
  IOStatus s = WriteError();
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  s = target()->NewWritableFile(fname, options, &file, dbg);
  if (s.ok()) result->reset(new FaultWritableFile(std::move(file), this));
  return s;
}

IOStatus FaultFileSystem::ReopenWritableFile(
    const std::string& fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, IODebugContext* dbg) {
  IOStatus s = WriteError();
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  s = target()->ReopenWritableFile(fname, options, &file, dbg);
  if (s.ok()) result->reset(new FaultWritableFile(std::move(file), this));
  return s;
}

IOStatus FaultFileSystem::ReuseWritableFile(
    const std::string& fname, const std::string& old_fname,
    const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, IODebugContext* dbg) {
  IOStatus s = WriteError();
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  s = target()->ReuseWritableFile(fname, old_fname, options, &file, dbg);
  if (s.ok()) result->reset(new FaultWritableFile(std::move(file), this));
  return s;
}

FaultEnv::FaultEnv()
    : fs_(std::make_shared<FaultFileSystem>()),
      env_(rocksdb::NewCompositeEnv(fs_)) {}

}  // namespace dist_counter
