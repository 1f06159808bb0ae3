#include "store/glog_logger.h"

#include <glog/logging.h>

#include <cstdio>

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
  if (level >= rocksdb::InfoLogLevel::WARN_LEVEL) {
    LOG(WARNING) << "rocksdb: " << line;
  } else {
    VLOG(1) << "rocksdb: " << line;
  }
}

void GlogLogger::Logv(const char* format, va_list ap) {
  Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
}

}  // namespace dist_counter
