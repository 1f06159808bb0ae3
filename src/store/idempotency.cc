#include "store/idempotency.h"

#include <rapidjson/document.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/slice.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace dist_counter {

namespace {

class ExpiredRecordFilter : public rocksdb::CompactionFilter {
 public:
  bool Filter(int /*level*/, const rocksdb::Slice& key,
              const rocksdb::Slice& existing_value, std::string* /*new_value*/,
              bool* /*value_changed*/) const override {
    if (!key.starts_with(rocksdb::Slice(kIdempotencyPrefix.data(),
                                        kIdempotencyPrefix.size()))) {
      return false;
    }
    IdempotencyRecord record;
    // A record that does not decode is kept (and reported when read).
    if (!DecodeIdempotencyRecord(existing_value.ToStringView(), &record).ok()) {
      return false;
    }
    return record.expires <= UnixNowSeconds();
  }
  const char* Name() const override {
    return "dist_counter.ExpiredIdempotencyRecords";
  }
};

}  // namespace

Status ValidateIdempotencyKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxIdempotencyKeyBytes) {
    return Status::InvalidArgument("an Idempotency-Key must be 1 to 128 bytes");
  }
  for (char c : key) {
    if (c < 0x20 || c > 0x7e) {
      return Status::InvalidArgument(
          "an Idempotency-Key must be printable ASCII");
    }
  }
  return Status::OK();
}

std::string IdempotencyDbKey(std::string_view key) {
  std::string db_key(kIdempotencyPrefix);
  db_key.append(key);
  return db_key;
}

std::string FingerprintRequest(std::string_view request) {
  uint64_t hash = 14695981039346656037ULL;
  for (unsigned char c : request) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx",
                static_cast<unsigned long long>(hash));
  return hex;
}

namespace {

// Appends `field` as its length in decimal, ':' and its bytes.
void AppendField(std::string_view field, std::string* out) {
  out->append(std::to_string(field.size()));
  out->push_back(':');
  out->append(field);
}

}  // namespace

std::string CanonicalRequest(
    std::string_view route,
    const std::vector<std::pair<std::string, int64_t>>& deltas) {
  std::vector<const std::pair<std::string, int64_t>*> items;
  items.reserve(deltas.size());
  for (const auto& item : deltas) items.push_back(&item);
  std::sort(items.begin(), items.end(),
            [](const auto* a, const auto* b) { return *a < *b; });
  std::string out;
  AppendField(route, &out);
  AppendField(std::to_string(items.size()), &out);
  for (const auto* item : items) {
    AppendField(item->first, &out);
    AppendField(std::to_string(item->second), &out);
  }
  return out;
}

bool SameRequest(const IdempotencyRecord& record,
                 const RequestFingerprint& request) {
  const std::string& mine =
      record.format == 1 ? request.legacy : request.current;
  return !mine.empty() && record.fingerprint == mine;
}

std::string EncodeIdempotencyRecord(const IdempotencyRecord& record) {
  // The fingerprint is hex: nothing to escape.
  return "{\"v\":" + std::to_string(kIdempotencyFormat) + ",\"h\":\"" +
         record.fingerprint + "\",\"s\":" + std::to_string(record.reply) +
         ",\"t\":" + std::to_string(record.expires) + "}";
}

Status DecodeIdempotencyRecord(std::string_view value,
                               IdempotencyRecord* record) {
  rapidjson::Document doc;
  doc.Parse(value.data(), value.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("h") ||
      !doc["h"].IsString() || !doc.HasMember("s") || !doc["s"].IsInt() ||
      !doc.HasMember("t") || !doc["t"].IsInt64()) {
    return Status::Corruption("not an idempotency record: " +
                              std::string(value));
  }
  int format = 1;  // records written before "v" existed
  if (doc.HasMember("v")) {
    if (!doc["v"].IsInt() || doc["v"].GetInt() != kIdempotencyFormat) {
      return Status::Corruption("unknown idempotency record format: " +
                                std::string(value));
    }
    format = kIdempotencyFormat;
  }
  record->format = format;
  record->fingerprint = doc["h"].GetString();
  record->reply = doc["s"].GetInt();
  record->expires = doc["t"].GetInt64();
  return Status::OK();
}

int64_t UnixNowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const rocksdb::CompactionFilter* IdempotencyCompactionFilter() {
  static const ExpiredRecordFilter* const filter = new ExpiredRecordFilter();
  return filter;
}

}  // namespace dist_counter
