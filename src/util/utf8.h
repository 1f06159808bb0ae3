// UTF-8 well-formedness (RFC 3629, Unicode table 3-7). Pure functions;
// safe from any thread.

#ifndef DIST_COUNTER_UTIL_UTF8_H_
#define DIST_COUNTER_UTIL_UTF8_H_

#include <string>
#include <string_view>

namespace dist_counter {

// Returns true if `text` is well-formed UTF-8: every sequence complete, in
// its shortest form, not a surrogate (U+D800..U+DFFF) and not above
// U+10FFFF. The empty string is well-formed.
bool IsValidUtf8(std::string_view text);

// Returns `text` with every byte that is not part of a well-formed sequence
// replaced by U+FFFD, so it can go into JSON meant for people (error
// messages). Well-formed text comes back unchanged.
std::string ToValidUtf8(std::string_view text);

}  // namespace dist_counter

#endif  // DIST_COUNTER_UTIL_UTF8_H_
