#include "store/glog_logger.h"

#include <glog/logging.h>

#include <cstdio>
#include <cstring>

namespace dist_counter {

GlogLogger::GlogLogger()
    : rocksdb::Logger(VLOG_IS_ON(1) ? rocksdb::InfoLogLevel::INFO_LEVEL
                                    : rocksdb::InfoLogLevel::WARN_LEVEL) {}

void GlogLogger::Logv(const rocksdb::InfoLogLevel level, const char* format,
                      va_list ap) {
  if (level < GetInfoLogLevel()) return;
  char line[1024];
  const int n = std::vsnprintf(line, sizeof(line), format, ap);
  if (n < 0) return;
  // Every checkpoint (a backup) disables file deletions twice, nested, and
  // RocksDB warns about the nesting: that is expected, not a warning.
  const bool nested_deletions =
      std::strstr(line, "File Deletions Disabled, but already") != nullptr ||
      std::strstr(line, "File Deletions Enable, but not really") != nullptr;
  if (level >= rocksdb::InfoLogLevel::WARN_LEVEL && !nested_deletions) {
    LOG(WARNING) << "rocksdb: " << line;
  } else {
    VLOG(1) << "rocksdb: " << line;
  }
}

void GlogLogger::Logv(const char* format, va_list ap) {
  Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
}

}  // namespace dist_counter
