// Fuzzes the peer wire decoders (proto/wire.h): DecodeChangesPage, what a
// puller makes of a peer's /internal/changes reply, and DecodeCounterReply.
// The first three bytes pick the request (limit 1..16, the cursor); the
// rest is the reply body. Whatever decodes must keep the request's
// promises: no more counters than asked for, a cursor that never moves
// back, names and actor ids that are UTF-8 (so a page made of them is valid
// JSON), states within the limits that encode and decode back to
// themselves.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "proto/wire.h"
#include "store/codec.h"
#include "util/json.h"
#include "util/utf8.h"

namespace dist_counter {
namespace {

// A state survives the disk codec unchanged; its actor ids are ones a peer
// may send and its baselines are within its totals.
void CheckState(const PnCounter& state) {
  for (const auto& [actor, counts] : state.actors()) {
    FUZZ_CHECK(!actor.empty() && actor.size() <= kMaxIdBytes);
    FUZZ_CHECK(IsValidUtf8(actor));
    FUZZ_CHECK(counts.Consistent());  // baselines within the totals
  }
  PnCounter decoded;
  FUZZ_CHECK(DecodeCounter(EncodeCounter(state), &decoded).ok());
  FUZZ_CHECK(EncodeCounter(decoded) == EncodeCounter(state));
}

void FuzzChangesPage(const uint8_t* data, size_t size) {
  if (size < 3) return;
  const size_t limit = data[0] % 16 + 1;
  ChangesCursor cursor;
  cursor.instance = data[1] % 4;
  cursor.since = data[2] % 8;
  const std::string_view body(reinterpret_cast<const char*>(data) + 3,
                              size - 3);
  WireLimits limits;
  limits.max_actors_per_counter = 8;
  limits.max_counter_bytes = 512;

  ChangesPage page;
  page.more = true;  // a marker: a failed decode must leave *page alone
  if (DecodeChangesPage(body, cursor, limit, limits, &page).ok()) {
    FUZZ_CHECK(page.counters.size() + page.rejected.size() <= limit);
    FUZZ_CHECK(page.next.instance == page.node.instance);
    if (!page.reset) {
      FUZZ_CHECK(page.node.instance == cursor.instance);
      FUZZ_CHECK(page.next.since >= cursor.since);
    }
    for (const CounterChange& change : page.counters) {
      FUZZ_CHECK(ValidateNewCounterName(change.name).ok());
      CheckState(change.state);
    }
    // What was taken can be served on as strict JSON.
    rapidjson::Document doc;
    PeerIdentity us;
    us.challenge_id = "1";
    us.node_id = "abcd0123";
    us.actor = "1.1.abcd0123";
    FUZZ_CHECK(ParseJson(EncodeChangesPage(us, page.reset, page.next.since,
                                           page.more, page.counters),
                         kMaxWireJsonDepth, &doc)
                   .ok());
  } else {
    FUZZ_CHECK(page.more && page.counters.empty() && page.rejected.empty());
  }

  PeerIdentity node;
  PnCounter state;
  bool found = false;
  if (DecodeCounterReply(body, "c", limits, &node, &state, &found).ok()) {
    CheckState(state);
    if (!found) FUZZ_CHECK(EncodeCounter(state) == EncodeCounter(PnCounter()));
  }
}

}  // namespace
}  // namespace dist_counter

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dist_counter::FuzzChangesPage(data, size);
  return 0;
}
