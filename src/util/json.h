// Parsing JSON that comes from outside (request bodies, flags) safely: with
// RapidJSON's iterative parser, which uses no recursion however deep the
// input nests, and a bound on the nesting depth. Pure functions; safe from
// any thread.

#ifndef DIST_COUNTER_UTIL_JSON_H_
#define DIST_COUNTER_UTIL_JSON_H_

#include <rapidjson/document.h>

#include <string_view>

#include "util/status.h"

namespace dist_counter {

// Deepest nesting of arrays and objects that request bodies may have
// (ours have at most 2: {"actors":[...]}).
inline constexpr int kMaxJsonDepth = 8;

// Returns InvalidArgument if `text` nests arrays and objects more than
// `max_depth` deep ("[]" and "{}" are depth 1, a scalar 0); OK otherwise,
// also for text that is not JSON (the parser refuses that). Looks at every
// byte once and allocates nothing.
Status CheckJsonDepth(std::string_view text, int max_depth);

// Parses `text`, one JSON value with nothing but whitespace after it, into
// *doc (replacing it). Strings must be well-formed UTF-8, raw or escaped
// (a lone surrogate "\udc00" is refused), so every string in *doc is. Returns
// InvalidArgument, leaving *doc unspecified, for bad JSON (a raw NUL byte
// included) or nesting deeper than `max_depth`.
Status ParseJson(std::string_view text, int max_depth,
                 rapidjson::Document* doc);

// ParseJson() without the UTF-8 rule: strings may hold any bytes (raw, or
// from an escaped lone low surrogate), for formats that judge strings one
// record at a time (a peer's page refuses one counter with a bad name, not
// the whole page) or must read what older versions wrote (disk). A raw NUL
// byte, bad JSON (a lone high-surrogate escape included) and nesting deeper
// than `max_depth` are still InvalidArgument.
Status ParseJsonAnyStrings(std::string_view text, int max_depth,
                           rapidjson::Document* doc);

}  // namespace dist_counter

#endif  // DIST_COUNTER_UTIL_JSON_H_
