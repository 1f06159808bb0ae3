// The Api's input parsers: counter names from URL path segments, and the
// bodies of POST /counters and POST /config. They only turn text into plain
// values or a Status (only routes.cc turns a Status into an HTTP code), so
// they are tested and fuzzed without a store or sockets (see fuzz/).
//
// Pure functions; safe from any thread.

#ifndef DIST_COUNTER_API_REQUEST_PARSER_H_
#define DIST_COUNTER_API_REQUEST_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace dist_counter {

// (name, delta) pairs of one batch increment, in body order.
using CounterDeltas = std::vector<std::pair<std::string, int64_t>>;

// Returns OK if `name` (already decoded) may name a counter at the API:
// what ValidateCounterName accepts (1-200 bytes, no '/', no NUL) that is
// also well-formed UTF-8, so every JSON reply naming it is valid JSON.
// Otherwise InvalidArgument saying why.
Status CheckCounterName(std::string_view name);

// Decodes the percent-encoded path segment `segment` into *name. Returns
// InvalidArgument, leaving *name unchanged, for a bad %-escape or a name
// CheckCounterName refuses.
Status ParseCounterName(std::string_view segment, std::string* name);

// Parses a batch body, a JSON object of names to int64 deltas
// ({"a":1,"b":-2}), into *deltas (replacing it). Returns InvalidArgument,
// leaving *deltas unchanged, for bad JSON, nesting deeper than
// kMaxJsonDepth, a non-object, a delta that is not an int64, a name
// CheckCounterName refuses, or a name given twice (in any spelling: "d"
// and "\u0064" are one name).
Status ParseBatchBody(std::string_view body, CounterDeltas* deltas);

// Parses a POST /config body, {"actors":["host:port",...]} (other members
// are ignored), into *peers (replacing it). Returns InvalidArgument,
// leaving *peers unchanged, for bad JSON, nesting deeper than
// kMaxJsonDepth, a non-object, "actors" missing, given twice or not a
// list of strings, or a list CheckPeerList refuses (bad address, a peer twice, more than
// `max_peers`).
Status ParseConfigBody(std::string_view body, size_t max_peers,
                       std::vector<std::string>* peers);

}  // namespace dist_counter

#endif  // DIST_COUNTER_API_REQUEST_PARSER_H_
