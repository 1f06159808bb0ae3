// The counter state decoder of codec.h on an already parsed RapidJSON
// value, for formats that embed counter states in a larger JSON document
// (the peer protocol, proto/wire.h). Kept apart from codec.h so that only
// the modules that parse JSON see RapidJSON.
//
// Pure functions; safe from any thread.

#ifndef DIST_COUNTER_STORE_COUNTER_JSON_H_
#define DIST_COUNTER_STORE_COUNTER_JSON_H_

#include <rapidjson/document.h>

#include "crdt/pn_counter.h"
#include "util/status.h"

namespace dist_counter {

// Decodes `value`, a counter state as EncodeCounter() writes it, into
// *counter (replacing it). Refuses exactly what DecodeCounter() refuses:
// returns Corruption, leaving *counter unchanged.
Status DecodeCounterValue(const rapidjson::Value& value, PnCounter* counter);

}  // namespace dist_counter

#endif  // DIST_COUNTER_STORE_COUNTER_JSON_H_
