// Idempotency records: what CounterStore::IncrementOnce() keeps per
// Idempotency-Key, how it is stored, and the RocksDB compaction filter that
// drops expired ones.
//
//   idem/<key> -> compact JSON {"v":2,"h":"<16 hex>","s":204,"t":<unix s>}:
//                 the record's format, the fingerprint of the request the
//                 key first came with, the reply it got, and when the
//                 record expires.
//
// Fingerprints by format ("v"):
//   2  FingerprintRequest(CanonicalRequest(route, deltas)): the request as
//      parsed, each field length-prefixed, a batch's items sorted by name,
//      so no two different requests share one encoding.
//   1  (records without "v", written by earlier versions) FingerprintRequest
//      of the request text as sent: "POST /counter/<name>\n<body>" or
//      "POST /counters\n<body>". Ambiguous (a name may end in a newline,
//      a body is trimmed before parsing), so no longer written; still read
//      and compared with the caller's format-1 fingerprint until it expires
//      (--idempotency_window_s after the upgrade at the latest).
// Any other "v" is Corruption, as is a record missing a field.
//
// Pure functions and a stateless filter; safe from any thread.

#ifndef DIST_COUNTER_STORE_IDEMPOTENCY_H_
#define DIST_COUNTER_STORE_IDEMPOTENCY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace rocksdb {
class CompactionFilter;
}  // namespace rocksdb

namespace dist_counter {

inline constexpr std::string_view kIdempotencyPrefix = "idem/";
// Longest Idempotency-Key accepted, in bytes.
inline constexpr size_t kMaxIdempotencyKeyBytes = 128;

// The record format written now.
inline constexpr int kIdempotencyFormat = 2;

// One key's record.
struct IdempotencyRecord {
  std::string fingerprint;  // of the first request, in format `format`
  int reply = 0;            // the reply it got (opaque to the store)
  int64_t expires = 0;      // unix seconds; at or after it the key is unknown
  int format = kIdempotencyFormat;  // 1 or 2, as above
};

// What identifies a request to the record of its key.
struct RequestFingerprint {
  std::string current;  // format 2: kept in a new record, compared with one
  std::string legacy;   // format 1: only compared with a format-1 record
};

// True if `request` is the request `record` was made for.
bool SameRequest(const IdempotencyRecord& record,
                 const RequestFingerprint& request);

// OK if `key` is 1 to 128 bytes of printable ASCII (0x21..0x7e and space);
// otherwise InvalidArgument saying why.
Status ValidateIdempotencyKey(std::string_view key);

// "idem/<key>".
std::string IdempotencyDbKey(std::string_view key);

// A 64-bit FNV-1a hash of `request` as 16 lower-case hex digits. Not
// cryptographic: it tells a client's own requests apart.
std::string FingerprintRequest(std::string_view request);

// The canonical text of a parsed request: `route` (e.g. "POST /counter"),
// then the number of items, then each item's name and delta, items sorted
// by name (then delta), so a batch in another order is the same request.
// Every field is written as its length in decimal, ':' and its bytes, so
// the encoding is unambiguous whatever bytes a name holds.
std::string CanonicalRequest(
    std::string_view route,
    const std::vector<std::pair<std::string, int64_t>>& deltas);

// The compact JSON above, in format kIdempotencyFormat (`record.format` is
// not consulted: only the current format is written).
std::string EncodeIdempotencyRecord(const IdempotencyRecord& record);
// Parses a record of format 2 (EncodeIdempotencyRecord()'s output) or of
// format 1 (the same without "v"), setting record->format; Corruption
// otherwise.
Status DecodeIdempotencyRecord(std::string_view value,
                               IdempotencyRecord* record);

// The current time in unix seconds.
int64_t UnixNowSeconds();

// A compaction filter that drops idem/ records expired at the time of the
// compaction (and nothing else). Static; lives as long as the process.
const rocksdb::CompactionFilter* IdempotencyCompactionFilter();

}  // namespace dist_counter

#endif  // DIST_COUNTER_STORE_IDEMPOTENCY_H_
