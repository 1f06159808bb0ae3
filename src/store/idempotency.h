// Idempotency records: what CounterStore::IncrementOnce() keeps per
// Idempotency-Key, how it is stored, and the RocksDB compaction filter that
// drops expired ones.
//
//   idem/<key> -> compact JSON {"h":"<16 hex>","s":204,"t":<unix s>}: the
//                 fingerprint of the request the key first came with, the
//                 reply it got, and when the record expires.
//
// Pure functions and a stateless filter; safe from any thread.

#ifndef DIST_COUNTER_STORE_IDEMPOTENCY_H_
#define DIST_COUNTER_STORE_IDEMPOTENCY_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace rocksdb {
class CompactionFilter;
}  // namespace rocksdb

namespace dist_counter {

inline constexpr std::string_view kIdempotencyPrefix = "idem/";
// Longest Idempotency-Key accepted, in bytes.
inline constexpr size_t kMaxIdempotencyKeyBytes = 128;

// One key's record.
struct IdempotencyRecord {
  std::string fingerprint;  // FingerprintRequest() of the first request
  int reply = 0;            // the reply it got (opaque to the store)
  int64_t expires = 0;      // unix seconds; at or after it the key is unknown
};

// OK if `key` is 1 to 128 bytes of printable ASCII (0x21..0x7e and space);
// otherwise InvalidArgument saying why.
Status ValidateIdempotencyKey(std::string_view key);

// "idem/<key>".
std::string IdempotencyDbKey(std::string_view key);

// A 64-bit FNV-1a hash of `request` as 16 lower-case hex digits. Not
// cryptographic: it tells a client's own requests apart.
std::string FingerprintRequest(std::string_view request);

// The compact JSON above.
std::string EncodeIdempotencyRecord(const IdempotencyRecord& record);
// Parses EncodeIdempotencyRecord()'s output; Corruption otherwise.
Status DecodeIdempotencyRecord(std::string_view value,
                               IdempotencyRecord* record);

// The current time in unix seconds.
int64_t UnixNowSeconds();

// A compaction filter that drops idem/ records expired at the time of the
// compaction (and nothing else). Static; lives as long as the process.
const rocksdb::CompactionFilter* IdempotencyCompactionFilter();

}  // namespace dist_counter

#endif  // DIST_COUNTER_STORE_IDEMPOTENCY_H_
