#include "util/decimal.h"

#include <algorithm>
#include <charconv>

namespace dist_counter {

namespace {

bool AllDigits(std::string_view text) {
  if (text.empty()) return false;
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

Status ParseUint64(std::string_view text, uint64_t* value) {
  if (!AllDigits(text)) return Status::InvalidArgument("not a decimal number");
  uint64_t parsed = 0;
  auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), parsed);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return Status::InvalidArgument("number out of range");
  }
  *value = parsed;
  return Status::OK();
}

Status ParseInt64(std::string_view text, int64_t* value) {
  bool negative = false;
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  uint64_t magnitude = 0;
  Status s = ParseUint64(text, &magnitude);
  if (!s.ok()) return s;
  const uint64_t limit =
      negative ? uint64_t{INT64_MAX} + 1 : uint64_t{INT64_MAX};
  if (magnitude > limit) return Status::InvalidArgument("out of int64 range");
  if (negative) {
    // Negate in unsigned arithmetic so INT64_MIN does not overflow.
    *value = static_cast<int64_t>(~magnitude + 1);
  } else {
    *value = static_cast<int64_t>(magnitude);
  }
  return Status::OK();
}

std::string Int128ToString(__int128 value) {
  if (value == 0) return "0";
  const bool negative = value < 0;
  // Work on the magnitude as unsigned so the most negative value is safe.
  unsigned __int128 magnitude = negative
                                    ? ~static_cast<unsigned __int128>(value) + 1
                                    : static_cast<unsigned __int128>(value);
  std::string digits;
  while (magnitude != 0) {
    digits.push_back(static_cast<char>('0' + static_cast<int>(magnitude % 10)));
    magnitude /= 10;
  }
  if (negative) digits.push_back('-');
  std::reverse(digits.begin(), digits.end());
  return digits;
}

}  // namespace dist_counter
