#include "util/crc32.h"

#include <gtest/gtest.h>

#include <string>

namespace dist_counter {
namespace {

TEST(Crc32Test, MatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32("123456789"), 0xCBF43926u);
}

TEST(Crc32Test, EmptyInputIsZero) { EXPECT_EQ(Crc32(""), 0u); }

TEST(Crc32Test, KnownVectors) {
  // Values from zlib's crc32() (Python's zlib.crc32 gives the same).
  EXPECT_EQ(Crc32("a"), 0xE8B7BE43u);
  EXPECT_EQ(Crc32("The quick brown fox jumps over the lazy dog"), 0x414FA339u);
  EXPECT_EQ(Crc32(std::string(1, '\0')), 0xD202EF8Du);
}

TEST(Crc32Test, JsonBodyOfPing) {
  // X-SFN-CRC32 carries this decimal for the body of GET /ping (zlib's
  // crc32 of the same bytes).
  EXPECT_EQ(Crc32("{\"status\":\"OK\"}"), 2238448643u);
}

TEST(Crc32Test, EveryByteCounts) {
  const std::string body = "{\"actors\":[\"a:7777\"]}";
  const uint32_t crc = Crc32(body);
  for (size_t i = 0; i < body.size(); ++i) {
    std::string changed = body;
    changed[i] ^= 0x01;
    EXPECT_NE(Crc32(changed), crc) << "byte " << i;
  }
  EXPECT_NE(Crc32(body + " "), crc);
}

}  // namespace
}  // namespace dist_counter
