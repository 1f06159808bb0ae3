// PnCounter is a state-based CRDT counter that goes up and down.
//
// Each actor (a writer; here a node incarnation) owns a pair of unsigned
// 64-bit totals: P, the sum of its increments, and N, the sum of its
// decrements. Only the owning actor ever raises its own pair. Next to them
// every actor has a baseline (BP, BN): the totals a reset observed. A reset
// (any replica may make one) raises every known actor's baseline to its
// current (P, N); BP <= P and BN <= N always hold.
//
// Merge takes the per-actor maximum of P, N, BP and BN, so it is
// commutative, associative and idempotent, and never lowers any total: a
// counter's value never goes back because of a merge with an older copy of
// itself. Resets on two replicas compose (the later baseline wins per
// actor), and an increment a reset did not see survives it (add wins): its
// P is above the baseline the reset set.
//
// Value() = sum(P - BP) - sum(N - BN), computed in 128 bits. It is exact as
// long as there are fewer than 2^63 actors, which no real deployment
// approaches.
//
// Pure value type: no I/O, no threads. Not safe to modify from several
// threads at once; copies are independent.

#ifndef DIST_COUNTER_CRDT_PN_COUNTER_H_
#define DIST_COUNTER_CRDT_PN_COUNTER_H_

#include <cstdint>
#include <map>
#include <string>

#include "util/status.h"

namespace dist_counter {

// The totals one actor has contributed to one counter, and the part of them
// the last reset known here cancelled.
struct ActorCounts {
  uint64_t p = 0;   // sum of increments
  uint64_t n = 0;   // sum of decrements (as a positive number)
  uint64_t bp = 0;  // baseline of p: increments cancelled by resets
  uint64_t bn = 0;  // baseline of n: decrements cancelled by resets

  // True if the baselines are within the totals (bp <= p, bn <= n), as in
  // every state a PnCounter builds; decoders refuse others.
  bool Consistent() const { return bp <= p && bn <= n; }
  // True if some reset ever touched these totals.
  bool HasBaseline() const { return bp != 0 || bn != 0; }

  bool operator==(const ActorCounts& o) const {
    return p == o.p && n == o.n && bp == o.bp && bn == o.bn;
  }
};

class PnCounter {
 public:
  PnCounter() = default;

  // Applies `delta` for `actor`: a positive delta raises the actor's P, a
  // negative one its N, zero changes nothing (but is valid). Returns
  // InvalidArgument and leaves *this unchanged if the total would overflow
  // 64 bits.
  Status Add(const std::string& actor, int64_t delta);

  // Returns what Add(actor, delta) would return, changing nothing.
  Status CheckAdd(const std::string& actor, int64_t delta) const;

  // Raises every actor's totals and baselines to at least those in
  // `other`. Returns true if *this changed. Never changes `other`.
  bool Merge(const PnCounter& other);

  // True if merging `other` into *this would change nothing (baselines
  // included).
  bool Covers(const PnCounter& other) const;

  // Observed reset: sets every known actor's baseline to its current
  // totals, so Value() becomes 0 until further increments. Actors unknown
  // here (increments this replica has not seen) are untouched and survive
  // the reset once merged. Returns true if *this changed (false if every
  // baseline already equals its totals).
  bool Reset();

  // Sets `actor`'s totals outright. For decoders rebuilding a stored state;
  // an increment goes through Add(). `counts` must be Consistent().
  void SetActor(const std::string& actor, const ActorCounts& counts);

  // True if any actor has a baseline (some reset happened).
  bool HasBaselines() const;

  // sum(P - BP) - sum(N - BN), exact.
  __int128 Value() const;
  // Value() in decimal, e.g. "-3".
  std::string ValueString() const;

  // The per-actor totals, sorted by actor id.
  const std::map<std::string, ActorCounts>& actors() const { return actors_; }
  bool empty() const { return actors_.empty(); }

  // "{a:+5-2,b:+1-0}", for tests and logs; an actor with a baseline shows
  // it after '@': "a:+5-2@+3-1".
  std::string DebugString() const;

  bool operator==(const PnCounter& o) const { return actors_ == o.actors_; }
  bool operator!=(const PnCounter& o) const { return !(*this == o); }

 private:
  std::map<std::string, ActorCounts> actors_;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_CRDT_PN_COUNTER_H_
