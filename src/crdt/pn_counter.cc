#include "crdt/pn_counter.h"

#include <algorithm>

#include "util/decimal.h"

namespace dist_counter {

namespace {

// The magnitude of `delta` as unsigned; safe for INT64_MIN.
uint64_t Magnitude(int64_t delta) {
  const uint64_t bits = static_cast<uint64_t>(delta);
  return delta < 0 ? ~bits + 1 : bits;
}

}  // namespace

Status PnCounter::CheckAdd(const std::string& actor, int64_t delta) const {
  if (delta == 0) return Status::OK();
  auto it = actors_.find(actor);
  const uint64_t current =
      it == actors_.end() ? 0 : (delta > 0 ? it->second.p : it->second.n);
  if (current > UINT64_MAX - Magnitude(delta)) {
    return Status::InvalidArgument("counter overflow");
  }
  return Status::OK();
}

Status PnCounter::Add(const std::string& actor, int64_t delta) {
  Status s = CheckAdd(actor, delta);
  if (!s.ok() || delta == 0) return s;
  ActorCounts& counts = actors_[actor];
  if (delta > 0) {
    counts.p += Magnitude(delta);
  } else {
    counts.n += Magnitude(delta);
  }
  return Status::OK();
}

bool PnCounter::Merge(const PnCounter& other) {
  bool changed = false;
  for (const auto& [actor, theirs] : other.actors_) {
    auto [it, inserted] = actors_.try_emplace(actor);
    ActorCounts& mine = it->second;
    changed |= inserted;
    if (theirs.p > mine.p) {
      mine.p = theirs.p;
      changed = true;
    }
    if (theirs.n > mine.n) {
      mine.n = theirs.n;
      changed = true;
    }
  }
  return changed;
}

bool PnCounter::Covers(const PnCounter& other) const {
  for (const auto& [actor, theirs] : other.actors_) {
    auto it = actors_.find(actor);
    if (it == actors_.end()) return false;
    if (theirs.p > it->second.p || theirs.n > it->second.n) return false;
  }
  return true;
}

void PnCounter::SetActor(const std::string& actor, const ActorCounts& counts) {
  actors_[actor] = counts;
}

__int128 PnCounter::Value() const {
  __int128 value = 0;
  for (const auto& entry : actors_) {
    value += static_cast<__int128>(entry.second.p);
    value -= static_cast<__int128>(entry.second.n);
  }
  return value;
}

std::string PnCounter::ValueString() const { return Int128ToString(Value()); }

std::string PnCounter::DebugString() const {
  std::string out = "{";
  for (const auto& [actor, counts] : actors_) {
    if (out.size() > 1) out += ",";
    out += actor + ":+" + std::to_string(counts.p) + "-" +
           std::to_string(counts.n);
  }
  return out + "}";
}

}  // namespace dist_counter
