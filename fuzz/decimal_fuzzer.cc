// Fuzzes ParseInt64, ParseUint64 and Int128ToString (util/decimal.h)
// against a reference computed another way: digit by digit in 128 bits.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "util/decimal.h"

namespace dist_counter {
namespace {

constexpr __int128 kTooBig = static_cast<__int128>(1) << 70;

// Parses [+-]?[0-9]+ (with `allow_sign`) into *value, saturating at
// kTooBig. Returns false for anything else.
bool ReferenceParse(std::string_view text, bool allow_sign, __int128* value) {
  size_t i = 0;
  bool negative = false;
  if (allow_sign && !text.empty() && (text[0] == '+' || text[0] == '-')) {
    negative = text[0] == '-';
    i = 1;
  }
  if (i == text.size()) return false;
  __int128 magnitude = 0;
  for (; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    magnitude = magnitude * 10 + (text[i] - '0');
    if (magnitude > kTooBig) magnitude = kTooBig;
  }
  *value = negative ? -magnitude : magnitude;
  return true;
}

void CheckParsers(std::string_view text) {
  __int128 expected = 0;
  const bool is_signed_number = ReferenceParse(text, true, &expected);
  int64_t parsed = 42;
  const bool int_ok = ParseInt64(text, &parsed).ok();
  FUZZ_CHECK(int_ok == (is_signed_number && expected >= INT64_MIN &&
                        expected <= INT64_MAX));
  FUZZ_CHECK(int_ok ? parsed == expected : parsed == 42);

  const bool is_number = ReferenceParse(text, false, &expected);
  uint64_t unsigned_parsed = 42;
  const bool uint_ok = ParseUint64(text, &unsigned_parsed).ok();
  FUZZ_CHECK(uint_ok == (is_number && expected <= UINT64_MAX));
  FUZZ_CHECK(uint_ok ? unsigned_parsed == expected : unsigned_parsed == 42);
}

// Int128ToString of the first 16 bytes must read back as the same value.
void CheckRendering(const uint8_t* data, size_t size) {
  if (size < sizeof(__int128)) return;
  __int128 value = 0;
  std::memcpy(&value, data, sizeof(value));
  const std::string text = Int128ToString(value);
  FUZZ_CHECK(!text.empty() && text.size() <= 40);
  const bool negative = text[0] == '-';
  FUZZ_CHECK(negative == (value < 0));
  const std::string_view digits =
      std::string_view(text).substr(negative ? 1 : 0);
  FUZZ_CHECK(!digits.empty() && (digits == "0" || digits[0] != '0'));
  unsigned __int128 magnitude = 0;
  for (char c : digits) {
    FUZZ_CHECK(c >= '0' && c <= '9');
    magnitude = magnitude * 10 + static_cast<unsigned>(c - '0');
  }
  const unsigned __int128 bits = static_cast<unsigned __int128>(value);
  FUZZ_CHECK((negative ? ~magnitude + 1 : magnitude) == bits);
  if (value >= INT64_MIN && value <= INT64_MAX) {
    FUZZ_CHECK(text == std::to_string(static_cast<int64_t>(value)));
  }
}

}  // namespace
}  // namespace dist_counter

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  dist_counter::CheckParsers(text);
  dist_counter::CheckRendering(data, size);
  return 0;
}
