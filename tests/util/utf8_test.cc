// Tests of IsValidUtf8 and ToValidUtf8 (src/util/utf8.h).

#include "util/utf8.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dist_counter {
namespace {

TEST(Utf8Test, WellFormedTextIsValid) {
  const std::vector<std::string> good = {
      "",
      "plain ascii",
      std::string("nul\0inside", 10),
      "\x7F",
      "caf\xC3\xA9",
      "\xC2\x80",          // U+0080, the first 2-byte code point
      "\xDF\xBF",          // U+07FF, the last
      "\xE0\xA0\x80",      // U+0800, the first 3-byte code point
      "\xED\x9F\xBF",      // U+D7FF, below the surrogates
      "\xEE\x80\x80",      // U+E000, above them
      "\xEF\xBF\xBF",      // U+FFFF
      "\xF0\x90\x80\x80",  // U+10000, the first 4-byte code point
      "\xF4\x8F\xBF\xBF",  // U+10FFFF, the last code point
      "\xE6\x97\xA5\xE6\x9C\xAC\xF0\x9F\x98\x80",
  };
  for (const std::string& text : good) {
    EXPECT_TRUE(IsValidUtf8(text)) << testing::PrintToString(text);
    EXPECT_EQ(ToValidUtf8(text), text);
  }
}

TEST(Utf8Test, IllFormedTextIsInvalid) {
  const std::vector<std::string> bad = {
      "\x80",                      // a lone continuation byte
      "a\xBF",                     // another, after ASCII
      "\xC3",                      // truncated 2-byte
      "\xC3x",                     // a 2-byte lead followed by ASCII
      "\xE2\x82",                  // truncated 3-byte
      "\xF0\x9F\x98",              // truncated 4-byte
      "\xC0\x80",                  // overlong NUL
      "\xC0\xAF",                  // overlong '/'
      "\xC1\xBF",                  // overlong
      "\xE0\x80\x80",              // overlong 3-byte
      "\xE0\x9F\xBF",              // overlong U+07FF
      "\xF0\x80\x80\x80",          // overlong 4-byte
      "\xF0\x8F\xBF\xBF",          // overlong U+FFFF
      "\xED\xA0\x80",              // U+D800, a high surrogate
      "\xED\xBF\xBF",              // U+DFFF, a low surrogate
      "\xED\xA0\xBD\xED\xB8\x80",  // a surrogate pair (CESU-8)
      "\xF4\x90\x80\x80",          // U+110000
      "\xF5\x80\x80\x80",          // lead byte past F4
      "\xF8\x88\x80\x80\x80",      // a 5-byte form
      "\xFC\x84\x80\x80\x80\x80",  // a 6-byte form
      "\xFE",
      "\xFF",
      "ok\xE2\x82\xACok\x80",  // valid, then a stray byte at the end
  };
  for (const std::string& text : bad) {
    EXPECT_FALSE(IsValidUtf8(text)) << testing::PrintToString(text);
    const std::string fixed = ToValidUtf8(text);
    EXPECT_TRUE(IsValidUtf8(fixed)) << testing::PrintToString(fixed);
    EXPECT_NE(fixed.find("\xEF\xBF\xBD"), std::string::npos);
  }
}

TEST(Utf8Test, ToValidUtf8ReplacesEachBadByteAndKeepsTheRest) {
  EXPECT_EQ(ToValidUtf8("a\xFF"
                        "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(ToValidUtf8("\xE2\x82x"), "\xEF\xBF\xBD\xEF\xBF\xBDx");
  EXPECT_EQ(ToValidUtf8("\xC3\xA9\x80"), "\xC3\xA9\xEF\xBF\xBD");
}

TEST(Utf8Test, EveryTwoByteStringAgreesWithTheDefinition) {
  // Two bytes are valid UTF-8 exactly when both are ASCII or they form
  // one sequence with a lead in C2..DF and a continuation in 80..BF.
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const std::string text{static_cast<char>(a), static_cast<char>(b)};
      const bool expected = (a < 0x80 && b < 0x80) ||
                            (a >= 0xC2 && a <= 0xDF && b >= 0x80 && b <= 0xBF);
      EXPECT_EQ(IsValidUtf8(text), expected) << a << " " << b;
    }
  }
}

}  // namespace
}  // namespace dist_counter
