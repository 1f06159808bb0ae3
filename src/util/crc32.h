// CRC-32 (IEEE 802.3, the zlib/PNG polynomial), as the original service put in
// its X-SFN-CRC32 header. Pure function; safe from any thread.

#ifndef DIST_COUNTER_UTIL_CRC32_H_
#define DIST_COUNTER_UTIL_CRC32_H_

#include <cstdint>
#include <string_view>

namespace dist_counter {

// Returns the CRC-32 of `data` ("123456789" gives 0xCBF43926).
uint32_t Crc32(std::string_view data);

}  // namespace dist_counter

#endif  // DIST_COUNTER_UTIL_CRC32_H_
