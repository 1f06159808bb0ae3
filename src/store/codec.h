// The on-disk format of a dist_counter data directory (RocksDB), readable
// with `ldb --db=<data_dir> scan`:
//
//   counter/<name>     -> compact JSON of the per-actor totals, e.g.
//                         {"1.2.3f2a9c01":{"p":5,"n":2}}; an actor that a
//                         reset (DELETE) saw also has its baselines:
//                         {"1.2.3f2a9c01":{"p":5,"n":2,"bp":5,"bn":2}}
//                         (both or neither; bp <= p, bn <= n). An actor
//                         without baselines is written without them, so a
//                         never-reset counter reads exactly as before
//                         baselines existed; releases before them refuse a
//                         record with baselines (an unknown field) as
//                         Corruption rather than misread it.
//   meta/format        -> "1", the layout version of this directory
//   meta/challenge_id  -> the --challenge_id the node last ran with
//   meta/node_id       -> 8 hex digits, chosen at random when the directory
//                         is created; tells two nodes with one challenge id
//                         apart
//   meta/incarnation   -> decimal, raised (with a synced write) at every start
//                         but one after a clean stop, and set by a restore
//                         and by a move to a new incarnation
//   meta/actors        -> JSON array of peer addresses, as POST /config set
//   meta/clean_stop    -> the incarnation that ended with a complete, synced
//                         final flush; present only while the node is down.
//                         The next start then keeps that incarnation (its
//                         totals on disk are the highest it ever issued).
//   idem/<key>         -> an Idempotency-Key's record: {"v":2,"h":...,"s":...,
//                         "t":...}, or without "v" (format 1) when written
//                         by earlier releases; layout, formats and how each
//                         is matched in store/idempotency.h
//
// Never change what an existing key means: old data dirs must still open.
// A value that fails to decode is Corruption, never an empty counter.
//
// Pure functions; safe from any thread.

#ifndef DIST_COUNTER_STORE_CODEC_H_
#define DIST_COUNTER_STORE_CODEC_H_

#include <string>
#include <string_view>
#include <vector>

#include "crdt/pn_counter.h"
#include "util/status.h"

namespace dist_counter {

inline constexpr std::string_view kCounterPrefix = "counter/";
inline constexpr std::string_view kMetaFormatKey = "meta/format";
inline constexpr std::string_view kMetaChallengeIdKey = "meta/challenge_id";
inline constexpr std::string_view kMetaNodeIdKey = "meta/node_id";
inline constexpr std::string_view kMetaIncarnationKey = "meta/incarnation";
inline constexpr std::string_view kMetaActorsKey = "meta/actors";
inline constexpr std::string_view kMetaCleanStopKey = "meta/clean_stop";
inline constexpr std::string_view kFormatVersion = "1";

// Longest counter name accepted, in bytes.
inline constexpr size_t kMaxCounterNameBytes = 200;

// Returns OK if `name` is a valid counter name: 1 to 200 bytes, no '/' and
// no NUL. Otherwise InvalidArgument saying why. This is the rule for names
// already on disk: older versions took any other bytes, and such counters
// still load.
Status ValidateCounterName(std::string_view name);

// The rule for names that come in now, from clients and from peers:
// ValidateCounterName() and well-formed UTF-8, so that every name this node
// creates or exchanges can go into JSON as it is. InvalidArgument otherwise.
// (The API hides names on disk that fail it; peers are never sent them.)
Status ValidateNewCounterName(std::string_view name);

// "counter/<name>".
std::string CounterKey(std::string_view name);
// If `key` is a counter key, stores its name in *name and returns true.
bool ParseCounterKey(std::string_view key, std::string* name);

// Compact JSON of `counter`'s per-actor totals (and baselines, for actors
// that have any).
std::string EncodeCounter(const PnCounter& counter);
// Decodes what EncodeCounter wrote into *counter (replacing it). Returns
// Corruption, leaving *counter unchanged, for anything else: bad JSON
// (a NUL byte or nesting over kMaxJsonDepth included), a non-object, totals
// that are not unsigned 64-bit integers, extra fields, only one of "bp" and
// "bn", a baseline above its total, an empty actor id or one given twice. Actor
// ids need not be UTF-8 (older versions took them from peers unchecked). This
// one decoder reads counter states from disk and (through DecodeCounterValue,
// counter_json.h) from peers, so both refuse exactly the same records.
Status DecodeCounter(std::string_view json, PnCounter* counter);

// The exact size in bytes of EncodeCounter(counter), computed without
// encoding it.
size_t EncodedCounterBytes(const PnCounter& counter);

// JSON array of strings, e.g. ["a:1","b"].
std::string EncodeStringList(const std::vector<std::string>& list);
// Decodes a JSON array of strings into *list. Returns InvalidArgument,
// leaving *list unchanged, for anything else.
Status DecodeStringList(std::string_view json, std::vector<std::string>* list);

}  // namespace dist_counter

#endif  // DIST_COUNTER_STORE_CODEC_H_
