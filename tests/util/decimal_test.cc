#include "util/decimal.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace dist_counter {
namespace {

constexpr int64_t kSentinel = 424242;

// Parses `text`, expecting success, and returns the value.
int64_t MustParseInt64(std::string_view text) {
  int64_t value = kSentinel;
  Status s = ParseInt64(text, &value);
  EXPECT_TRUE(s.ok()) << "\"" << text << "\": " << s.ToString();
  return value;
}

TEST(DecimalTest, ParseInt64AcceptsSignedDecimals) {
  EXPECT_EQ(MustParseInt64("2"), 2);
  EXPECT_EQ(MustParseInt64("-3"), -3);
  EXPECT_EQ(MustParseInt64("+5"), 5);
  EXPECT_EQ(MustParseInt64("0"), 0);
  EXPECT_EQ(MustParseInt64("-0"), 0);
  EXPECT_EQ(MustParseInt64("+0"), 0);
  EXPECT_EQ(MustParseInt64("007"), 7);
  EXPECT_EQ(MustParseInt64("1234567890123"), 1234567890123);
}

TEST(DecimalTest, ParseInt64TakesBothLimitsExactly) {
  EXPECT_EQ(MustParseInt64("9223372036854775807"),
            std::numeric_limits<int64_t>::max());
  EXPECT_EQ(MustParseInt64("+9223372036854775807"),
            std::numeric_limits<int64_t>::max());
  EXPECT_EQ(MustParseInt64("-9223372036854775808"),
            std::numeric_limits<int64_t>::min());
  EXPECT_EQ(MustParseInt64("-9223372036854775807"),
            std::numeric_limits<int64_t>::min() + 1);
}

TEST(DecimalTest, ParseInt64RejectsEverythingElseAndKeepsTheValue) {
  const char* bad[] = {"",
                       "+",
                       "-",
                       "2.5",
                       "A",
                       " 2",
                       "2 ",
                       "0x10",
                       "99999999999999999999",
                       "9223372036854775808",
                       "+9223372036854775808",
                       "-9223372036854775809",
                       "18446744073709551616",
                       "--1",
                       "+-1",
                       "1e3",
                       "1,000",
                       "٣",  // Arabic-Indic digit three
                       "\t1",
                       "1\n"};
  for (const char* text : bad) {
    int64_t value = kSentinel;
    Status s = ParseInt64(text, &value);
    EXPECT_TRUE(s.IsInvalidArgument()) << "\"" << text << "\"";
    EXPECT_EQ(value, kSentinel) << "\"" << text << "\"";
  }
}

TEST(DecimalTest, ParseInt64RejectsEmbeddedNul) {
  int64_t value = kSentinel;
  EXPECT_TRUE(
      ParseInt64(std::string_view("1\0", 2), &value).IsInvalidArgument());
  EXPECT_EQ(value, kSentinel);
}

TEST(DecimalTest, ParseInt64ReadsOnlyTheView) {
  // The bytes after the view must not be read as part of the number.
  const std::string text = "12345";
  int64_t value = 0;
  ASSERT_TRUE(ParseInt64(std::string_view(text).substr(0, 2), &value).ok());
  EXPECT_EQ(value, 12);
}

TEST(DecimalTest, ParseUint64AcceptsTheWholeRange) {
  uint64_t value = 7;
  ASSERT_TRUE(ParseUint64("0", &value).ok());
  EXPECT_EQ(value, 0u);
  ASSERT_TRUE(ParseUint64("18446744073709551615", &value).ok());
  EXPECT_EQ(value, std::numeric_limits<uint64_t>::max());
  ASSERT_TRUE(ParseUint64("42", &value).ok());
  EXPECT_EQ(value, 42u);
}

TEST(DecimalTest, ParseUint64RejectsSignsAndOverflow) {
  const char* bad[] = {"",
                       "+1",
                       "-1",
                       "-0",
                       "1.0",
                       " 1",
                       "1 ",
                       "0x1",
                       "18446744073709551616",
                       "99999999999999999999999"};
  for (const char* text : bad) {
    uint64_t value = 99;
    EXPECT_TRUE(ParseUint64(text, &value).IsInvalidArgument())
        << "\"" << text << "\"";
    EXPECT_EQ(value, 99u) << "\"" << text << "\"";
  }
}

TEST(DecimalTest, Int128ToStringSmallValues) {
  EXPECT_EQ(Int128ToString(0), "0");
  EXPECT_EQ(Int128ToString(4), "4");
  EXPECT_EQ(Int128ToString(-12), "-12");
  EXPECT_EQ(Int128ToString(1000000), "1000000");
  EXPECT_EQ(Int128ToString(-1), "-1");
}

TEST(DecimalTest, Int128ToStringBeyondSixtyFourBits) {
  const __int128 u64max = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(Int128ToString(u64max), "18446744073709551615");
  EXPECT_EQ(Int128ToString(u64max + 1), "18446744073709551616");
  EXPECT_EQ(Int128ToString(-u64max), "-18446744073709551615");
  EXPECT_EQ(Int128ToString(3 * u64max), "55340232221128654845");
  EXPECT_EQ(Int128ToString(std::numeric_limits<int64_t>::min()),
            "-9223372036854775808");
}

TEST(DecimalTest, Int128ToStringExtremes) {
  const __int128 max =
      static_cast<__int128>((static_cast<unsigned __int128>(1) << 127) - 1);
  const __int128 min = -max - 1;
  EXPECT_EQ(Int128ToString(max), "170141183460469231731687303715884105727");
  EXPECT_EQ(Int128ToString(min), "-170141183460469231731687303715884105728");
}

TEST(DecimalTest, Int64RoundTripsThroughText) {
  const int64_t values[] = {0,
                            1,
                            -1,
                            99,
                            -100,
                            std::numeric_limits<int64_t>::max(),
                            std::numeric_limits<int64_t>::min()};
  for (int64_t v : values) {
    int64_t parsed = 0;
    ASSERT_TRUE(ParseInt64(Int128ToString(v), &parsed).ok()) << v;
    EXPECT_EQ(parsed, v);
  }
}

}  // namespace
}  // namespace dist_counter
