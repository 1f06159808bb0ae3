// Fuzzes the decoding of counter names from URL path segments
// (ParseCounterName in api/request_parser.h) and the UTF-8 checks it uses
// (util/utf8.h), against a reference UTF-8 decoder written another way:
// code point by code point, then range checks.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "api/request_parser.h"
#include "fuzz/fuzz_check.h"
#include "util/url.h"
#include "util/utf8.h"

namespace dist_counter {
namespace {

bool ReferenceValidUtf8(std::string_view text) {
  static constexpr uint32_t kSmallest[] = {0, 0x80, 0x800, 0x10000};
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    size_t extra = 0;
    uint32_t code_point = 0;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if ((lead & 0xE0) == 0xC0) {
      extra = 1;
      code_point = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      extra = 2;
      code_point = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      extra = 3;
      code_point = lead & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;
    for (size_t k = 1; k <= extra; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code_point = (code_point << 6) | (next & 0x3F);
    }
    if (code_point < kSmallest[extra]) return false;  // overlong
    if (code_point > 0x10FFFF) return false;
    if (code_point >= 0xD800 && code_point <= 0xDFFF) return false;
    i += extra + 1;
  }
  return true;
}

void CheckUtf8(std::string_view text) {
  const bool valid = IsValidUtf8(text);
  FUZZ_CHECK(valid == ReferenceValidUtf8(text));
  const std::string fixed = ToValidUtf8(text);
  FUZZ_CHECK(IsValidUtf8(fixed));
  FUZZ_CHECK(valid == (fixed == text));
}

void CheckName(std::string_view segment) {
  std::string name = "unchanged";
  const bool ok = ParseCounterName(segment, &name).ok();
  std::string decoded;
  if (!PercentDecode(segment, /*plus_is_space=*/false, &decoded).ok()) {
    FUZZ_CHECK(!ok);
    FUZZ_CHECK(name == "unchanged");
    return;
  }
  const bool allowed = !decoded.empty() && decoded.size() <= 200 &&
                       decoded.find('/') == std::string::npos &&
                       decoded.find('\0') == std::string::npos &&
                       ReferenceValidUtf8(decoded);
  FUZZ_CHECK(ok == allowed);
  if (!ok) {
    FUZZ_CHECK(name == "unchanged");
    return;
  }
  FUZZ_CHECK(name == decoded);
  // Encoding a name and decoding it again gives it back.
  std::string again;
  FUZZ_CHECK(ParseCounterName(PercentEncode(name), &again).ok());
  FUZZ_CHECK(again == name);
}

}  // namespace
}  // namespace dist_counter

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  dist_counter::CheckUtf8(text);
  dist_counter::CheckName(text);
  return 0;
}
