// Percent-decoding of URL path segments and query values (RFC 3986).
// Pure functions; safe from any thread.

#ifndef DIST_COUNTER_UTIL_URL_H_
#define DIST_COUNTER_UTIL_URL_H_

#include <string>
#include <string_view>

#include "util/status.h"

namespace dist_counter {

// Decodes "%XX" escapes in `text` into *out (replacing it). When
// `plus_is_space` (query strings), '+' decodes to ' '. Returns
// InvalidArgument, leaving *out unchanged, for a '%' not followed by two
// hex digits.
Status PercentDecode(std::string_view text, bool plus_is_space,
                     std::string* out);

// Encodes every byte outside [A-Za-z0-9-._~] as "%XX".
std::string PercentEncode(std::string_view text);

}  // namespace dist_counter

#endif  // DIST_COUNTER_UTIL_URL_H_
