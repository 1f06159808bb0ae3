// GlogLogger hands RocksDB's own log messages to glog instead of the LOG
// file RocksDB would keep in the data directory. That file shares the
// disk of the data: once a write to it fails (a full disk), RocksDB's file
// logger aborts the process at its next message (an assertion in
// WritableFileWriter), so a full disk would crash the node instead of
// making it refuse writes.
//
// RocksDB's WARN and higher go to glog as WARNING (the store logs the
// errors it acts on itself), but for the warnings about nested file
// deletion switches that every checkpoint causes; lower levels (and those)
// are dropped unless --v=1.
//
// Thread-safe, as RocksDB requires of a Logger.

#ifndef DIST_COUNTER_STORE_GLOG_LOGGER_H_
#define DIST_COUNTER_STORE_GLOG_LOGGER_H_

#include <rocksdb/env.h>

#include <cstdarg>

namespace dist_counter {

class GlogLogger : public rocksdb::Logger {
 public:
  GlogLogger();

  // Formats one message and passes it to glog at the level described
  // above. Never throws.
  void Logv(const rocksdb::InfoLogLevel level, const char* format,
            va_list ap) override;
  // A message without a level is logged as INFO.
  void Logv(const char* format, va_list ap) override;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_STORE_GLOG_LOGGER_H_
