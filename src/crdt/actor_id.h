// Actor ids name the writers of a PnCounter. A node writes under
// "<challenge_id>.<incarnation>.<node_id>": its challenge id (which may hold
// dots), a canonical decimal incarnation (no sign, no leading zero), and its
// node id (8 hex digits, no dots). This module builds them and recognises a
// node's own, reading from the right so that dots in a challenge id cannot
// fool it.
//
// Pure functions: no I/O, no state; safe from any thread.

#ifndef DIST_COUNTER_CRDT_ACTOR_ID_H_
#define DIST_COUNTER_CRDT_ACTOR_ID_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace dist_counter {

// The actor id of node (challenge_id, node_id) at `incarnation`.
std::string MakeActorId(std::string_view challenge_id, uint64_t incarnation,
                        std::string_view node_id);

// How an actor id relates to one node.
enum class ActorOwner {
  kOther,      // another node's actor
  kOwn,        // this node's, at a canonical incarnation (stored)
  kLookalike,  // this node's prefix and suffix, but an incarnation this node
               // never writes ("01", "+1", "x", beyond 2^64-1)
};

// Tells whether `actor` belongs to node (challenge_id, node_id). For kOwn,
// stores the incarnation in *incarnation; otherwise leaves it unchanged.
ActorOwner ClassifyActor(std::string_view actor, std::string_view challenge_id,
                         std::string_view node_id, uint64_t* incarnation);

}  // namespace dist_counter

#endif  // DIST_COUNTER_CRDT_ACTOR_ID_H_
