// Decimal text <-> integers, strict: no spaces, no fractions, no overflow.
// Pure functions; safe from any thread.

#ifndef DIST_COUNTER_UTIL_DECIMAL_H_
#define DIST_COUNTER_UTIL_DECIMAL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace dist_counter {

// Parses `text`, an optional sign ('+' or '-') followed by one or more ASCII
// digits, into *value. Returns InvalidArgument, leaving *value unchanged, for
// anything else (empty, "+", "2.5", " 2", "0x10") or a number outside int64.
Status ParseInt64(std::string_view text, int64_t* value);

// Parses one or more ASCII digits (no sign) into *value. Returns
// InvalidArgument, leaving *value unchanged, for anything else or overflow.
Status ParseUint64(std::string_view text, uint64_t* value);

// Renders `value` in decimal ("-12", "0", "340282366920938463463...").
std::string Int128ToString(__int128 value);

}  // namespace dist_counter

#endif  // DIST_COUNTER_UTIL_DECIMAL_H_
