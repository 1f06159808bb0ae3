// The peer wire protocol: what one node asks another over its HTTP port and
// what comes back. Both sides call this module (api/routes.cc serves it,
// cluster/peer_client.cc asks), so they cannot drift apart; counter states
// inside it use the one strict state decoder of store/codec.h.
//
//   GET /internal/changes?instance=<u64>&since=<u64>&limit=<n>&max_bytes=<n>
//     -> {"node":<identity>,"instance":<u64>,"reset":<bool>,"next":<u64>,
//         "more":<bool>,"counters":[<change>,...]}
//     <change> is {"name":<name>,"state":<state>}, or, for a counter whose
//     state alone is larger than the page, {"name":<name>,"omitted":<bytes>}
//     so that the cursor can move past it. The server stops adding counters
//     once the page holds `max_bytes` of states (but always sends at least
//     one change when there is one), and never more than `limit`.
//   GET /internal/counter/<percent-encoded name>
//     -> {"node":<identity>,"name":<name>,"state":<state>}, plus
//        "found":false when the peer has no such counter (state {}): a
//        refresh then creates nothing. Absent means true (older peers).
//   <identity> is {"challenge_id":..,"node_id":..,"actor":..}
//   <state> is the disk format of a counter: {"<actor>":{"p":P,"n":N},...},
//     an actor a reset saw with its baselines: {"p":P,"n":N,"bp":BP,"bn":BN}.
//     A state without baselines is sent exactly as before they existed;
//     releases before them reject a state with baselines as bad_state.
//
// Decoders are strict. A changes page whose framing is broken (not JSON,
// a NUL byte, nesting deeper than kMaxWireJsonDepth, a missing or malformed
// node/instance/reset/next/more/counters, an inconsistent cursor) is
// Corruption and nothing of it is returned. A problem of one counter entry
// is that counter's alone: a bad name (not ValidateNewCounterName, e.g. not
// UTF-8), a malformed state, a bad actor id (over kMaxIdBytes, NUL, not
// UTF-8, a lone surrogate escape included) or a state beyond the
// receiver's bounds (WireLimits) leaves that counter out, listed in
// ChangesPage::rejected, while the rest of the page counts and the cursor
// moves. A counter reply is one counter: any problem is Corruption.
//
// Encoders never write invalid JSON, whatever the store holds: a change
// whose name is not UTF-8 (older versions stored any bytes) is left out of
// a page, and actors whose ids are not UTF-8 are left out of states sent.
//
// Pure functions and plain structs; safe from any thread.

#ifndef DIST_COUNTER_PROTO_WIRE_H_
#define DIST_COUNTER_PROTO_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "crdt/pn_counter.h"
#include "store/counter_store.h"
#include "util/status.h"

namespace dist_counter {

// Page size in bytes of states when a request names none.
inline constexpr size_t kDefaultPageBytes = 1 << 20;
// The largest page a server builds, whatever the request says.
inline constexpr size_t kMaxPageBytes = 16 << 20;
// Limit on identifiers (challenge id, node id, actor ids) a peer sends.
inline constexpr size_t kMaxIdBytes = 256;
// Room for a reply's envelope and per-counter framing on top of its states.
inline constexpr size_t kReplySlackBytes = 64 << 10;
// Deepest nesting a reply may have: pages nest 5 deep (reply, counters,
// change, state, totals); deeper is Corruption, refused before parsing.
inline constexpr int kMaxWireJsonDepth = 8;

// Who answered, as the reply's "node" object says.
struct PeerIdentity {
  std::string challenge_id;
  std::string node_id;
  std::string actor;
  // The peer's CounterStore::instance_id(), given by changes replies; 0 in
  // counter replies, which do not carry it.
  uint64_t instance = 0;
};

// Where a puller stands in one peer's change log. The default cursor means
// "nothing pulled yet": the peer then sends everything.
struct ChangesCursor {
  uint64_t instance = 0;  // the peer instance `since` belongs to; 0: none
  uint64_t since = 0;     // changes after this one are wanted
};

// What a receiver accepts in one counter state; larger ones are rejected.
struct WireLimits {
  size_t max_actors_per_counter = 1024;
  size_t max_counter_bytes = 256 << 10;  // EncodedCounterBytes() of a state
};

// A counter a page carried but the receiver refused.
struct RejectedCounter {
  // As sent, with bytes that are not UTF-8 replaced (for reports only);
  // "" if the entry had no name.
  std::string name;
  // "too_many_actors", "too_large", "bad_name", "bad_actor" or "bad_state".
  std::string reason;
  std::string detail;  // for people: what exactly was wrong
  size_t actors = 0;   // as sent (0 if the state was omitted)
  size_t bytes = 0;    // as sent, or as the "omitted" marker says
};

// One page of a peer's changes.
struct ChangesPage {
  PeerIdentity node;
  bool reset = false;  // the cursor was not the peer's: this starts at 0
  ChangesCursor next;  // the cursor to send next time
  bool more = false;   // further changes wait: ask again with `next`
  std::vector<CounterChange> counters;  // within the receiver's limits
  std::vector<RejectedCounter> rejected;
};

// "/internal/changes?..." asking for at most `limit` changes after `cursor`
// in pages of about `max_bytes` of states.
std::string ChangesTarget(const ChangesCursor& cursor, size_t limit,
                          size_t max_bytes);
// "/internal/counter/<percent-encoded name>".
std::string CounterTarget(const std::string& name);

// The page size a server uses for a request's max_bytes (0: not given).
size_t ServedPageBytes(uint64_t requested);

// The body of a changes reply from `node` (its instance included) holding
// `changes`, in order. A change with `omitted` set is sent as a marker. A
// change whose name is not UTF-8 is left out; if that leaves none, `more`
// is sent as false (the puller resumes at `next` in its next round).
std::string EncodeChangesPage(const PeerIdentity& node, bool reset,
                              uint64_t next, bool more,
                              const std::vector<CounterChange>& changes);
// The body of a counter reply from `node`; `found` false says the counter
// does not exist (`state` is then empty).
std::string EncodeCounterReply(const PeerIdentity& node,
                               const std::string& name, const PnCounter& state,
                               bool found = true);

// Decodes the reply to a request of at most `limit` changes after `cursor`.
// On success replaces *page and returns OK; counters refused (beyond
// `limits` or malformed, see above) are in page->rejected, not
// page->counters. On anything malformed or
// inconsistent (the cursor moving back, more=true without progress, more
// counters than asked for) returns Corruption and leaves *page unchanged.
Status DecodeChangesPage(std::string_view body, const ChangesCursor& cursor,
                         size_t limit, const WireLimits& limits,
                         ChangesPage* page);

// Decodes the reply to a request for counter `name`. On success stores who
// answered in *node, the state in *state and (if `found` is not null)
// whether the peer has the counter in *found, and returns OK. Returns
// Corruption, outputs unchanged, for a malformed reply, another name, or a
// state beyond `limits`.
Status DecodeCounterReply(std::string_view body, const std::string& name,
                          const WireLimits& limits, PeerIdentity* node,
                          PnCounter* state, bool* found = nullptr);

}  // namespace dist_counter

#endif  // DIST_COUNTER_PROTO_WIRE_H_
