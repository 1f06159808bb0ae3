#include "crdt/actor_id.h"

#include "util/decimal.h"

namespace dist_counter {

std::string MakeActorId(std::string_view challenge_id, uint64_t incarnation,
                        std::string_view node_id) {
  std::string id(challenge_id);
  id += '.';
  id += std::to_string(incarnation);
  id += '.';
  id += node_id;
  return id;
}

ActorOwner ClassifyActor(std::string_view actor, std::string_view challenge_id,
                         std::string_view node_id, uint64_t* incarnation) {
  // The prefix "<challenge_id>." and the suffix ".<node_id>" must both be
  // there without overlapping; what lies between is the incarnation.
  const size_t prefix = challenge_id.size() + 1;
  const size_t suffix = node_id.size() + 1;
  if (actor.size() <= prefix + suffix ||
      actor.substr(0, challenge_id.size()) != challenge_id ||
      actor[challenge_id.size()] != '.' ||
      actor.substr(actor.size() - node_id.size()) != node_id ||
      actor[actor.size() - suffix] != '.') {
    return ActorOwner::kOther;
  }
  const std::string_view middle =
      actor.substr(prefix, actor.size() - prefix - suffix);
  // This node writes incarnations in canonical decimal only.
  if (middle.size() > 1 && middle[0] == '0') return ActorOwner::kLookalike;
  for (char c : middle) {
    if (c < '0' || c > '9') return ActorOwner::kLookalike;
  }
  uint64_t value = 0;
  if (!ParseUint64(middle, &value).ok()) return ActorOwner::kLookalike;
  *incarnation = value;
  return ActorOwner::kOwn;
}

}  // namespace dist_counter
