#include "crdt/pn_counter.h"

#include <algorithm>
#include <cassert>

#include "util/decimal.h"

namespace dist_counter {

namespace {

// Raises *mine to `theirs` if it is lower; true if it did.
bool RaiseTo(uint64_t theirs, uint64_t* mine) {
  if (theirs <= *mine) return false;
  *mine = theirs;
  return true;
}

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
    // Per-field maxima of two consistent states are consistent:
    // max(bp, bp') <= max(p, p').
    changed |= RaiseTo(theirs.p, &mine.p);
    changed |= RaiseTo(theirs.n, &mine.n);
    changed |= RaiseTo(theirs.bp, &mine.bp);
    changed |= RaiseTo(theirs.bn, &mine.bn);
    assert(mine.Consistent());
  }
  return changed;
}

bool PnCounter::Reset() {
  bool changed = false;
  for (auto& [actor, counts] : actors_) {
    changed |= RaiseTo(counts.p, &counts.bp);
    changed |= RaiseTo(counts.n, &counts.bn);
  }
  return changed;
}

bool PnCounter::HasBaselines() const {
  for (const auto& entry : actors_) {
    if (entry.second.HasBaseline()) return true;
  }
  return false;
}

bool PnCounter::Covers(const PnCounter& other) const {
  for (const auto& [actor, theirs] : other.actors_) {
    auto it = actors_.find(actor);
    if (it == actors_.end()) return false;
    const ActorCounts& mine = it->second;
    if (theirs.p > mine.p || theirs.n > mine.n || theirs.bp > mine.bp ||
        theirs.bn > mine.bn) {
      return false;
    }
  }
  return true;
}

void PnCounter::SetActor(const std::string& actor, const ActorCounts& counts) {
  assert(counts.Consistent());
  actors_[actor] = counts;
}

__int128 PnCounter::Value() const {
  __int128 value = 0;
  for (const auto& entry : actors_) {
    // Each difference fits in 64 bits (baselines are within the totals).
    value += static_cast<__int128>(entry.second.p - entry.second.bp);
    value -= static_cast<__int128>(entry.second.n - entry.second.bn);
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
    if (counts.HasBaseline()) {
      out += "@+" + std::to_string(counts.bp) + "-" + std::to_string(counts.bn);
    }
  }
  return out + "}";
}

}  // namespace dist_counter
