// FromRocks turns a RocksDB status into ours, for the store's files.

#ifndef DIST_COUNTER_STORE_ROCKS_STATUS_H_
#define DIST_COUNTER_STORE_ROCKS_STATUS_H_

#include <rocksdb/status.h>

#include <string>

#include "util/status.h"

namespace dist_counter {

// OK for OK; NotFound, Corruption or IOError (the message prefixed with
// `what`) otherwise.
inline Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::OK();
  if (s.IsNotFound()) return Status::NotFound(what);
  if (s.IsCorruption()) return Status::Corruption(what + ": " + s.ToString());
  return Status::IOError(what + ": " + s.ToString());
}

}  // namespace dist_counter

#endif  // DIST_COUNTER_STORE_ROCKS_STATUS_H_
