#include "simulation.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "crdt/pn_counter.h"
#include "sim_cluster.h"

namespace dist_counter {
namespace sim {

namespace {

// The fingerprint the Api gives POST /counter/<name> with body `delta`.
RequestFingerprint KeyedFingerprint(const std::string& name, int64_t delta) {
  RequestFingerprint fingerprint;
  fingerprint.current =
      FingerprintRequest(CanonicalRequest("POST /counter", {{name, delta}}));
  return fingerprint;
}

std::string Int128(__int128 v) {
  if (v == 0) return "0";
  const bool negative = v < 0;
  std::string digits;
  while (v != 0) {
    const int d = static_cast<int>(v % 10);
    digits.insert(digits.begin(), static_cast<char>('0' + (d < 0 ? -d : d)));
    v /= 10;
  }
  return negative ? "-" + digits : digits;
}

uint64_t Fnv1a(const std::vector<std::string>& lines) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (const std::string& line : lines) {
    for (char c : line) {
      hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    }
    hash = (hash ^ '\n') * 0x100000001b3ULL;
  }
  return hash;
}

// True if every actor's totals and baselines in `before` are within
// `after`'s.
bool Grew(const PnCounter& before, const PnCounter& after) {
  for (const auto& [actor, c] : before.actors()) {
    auto it = after.actors().find(actor);
    if (it == after.actors().end()) return false;
    const ActorCounts& a = it->second;
    if (a.p < c.p || a.n < c.n || a.bp < c.bp || a.bn < c.bn) return false;
  }
  return true;
}

}  // namespace

void Simulation::ObserveActors() {
  for (const SimNode& node : nodes_) {
    if (node.store) actor_ids_.insert(node.store->actor_id());
  }
}

// Records the outcome of an acknowledged increment of `delta` to `name` at
// node i: certain now (durable), or once node i flushes (default mode).
void Simulation::Settle(int i, const std::string& name, int64_t delta,
                        bool kept) {
  Bounds& b = bounds_[name];
  if (kept) {
    b.certain += delta;
    if (!nodes_[i].snapshot.empty()) {
      nodes_[i].since_snapshot.emplace_back(name, delta);
    }
  } else if (delta > 0) {
    b.maybe_up += delta;
  } else {
    b.maybe_down += delta;
  }
}

void Simulation::Increment(int i) {
  SimNode& node = nodes_[i];
  const std::string name = Counter(static_cast<int>(
      random_.Below(static_cast<uint64_t>(std::max(1, options_.counters)))));
  const int64_t delta = random_.Between(-3, 5);
  const bool keyed = random_.Percent(20);
  std::string what = Name(i) + " increment " + name + " " +
                     std::to_string(delta) + (keyed ? " keyed" : "");
  Status s;
  if (keyed) {
    const std::string key = "k" + std::to_string(next_key_++);
    IdempotentOutcome outcome = IdempotentOutcome::kApplied;
    int reply = 0;
    s = node.store->IncrementOnce(key, KeyedFingerprint(name, delta), 204, name,
                                  delta, &outcome, &reply);
    if (s.ok()) {
      // The client did not see the reply and retries.
      Status again =
          node.store->IncrementOnce(key, KeyedFingerprint(name, delta), 204,
                                    name, delta, &outcome, &reply);
      if (!again.ok() || outcome != IdempotentOutcome::kReplayed) {
        Fail(what + ": the retry was not a replay: " + again.ToString());
      }
    }
  } else {
    s = node.store->Increment(name, delta);
  }
  Trace(what + " -> " + (s.ok() ? "OK" : s.ToString()));
  if (!s.ok()) return;  // refused: applied nowhere
  if (keyed && delta != 0) {
    PnCounter state;
    (void)node.store->Get(name, &state);
    const std::string actor = node.store->actor_id();
    node.keyed.push_back({"k" + std::to_string(next_key_ - 1), name, delta,
                          node.losses, actor, state.actors().at(actor)});
    if (node.keyed.size() > 8) node.keyed.erase(node.keyed.begin());
  }
  CheckNotHidden(i, name);
  if (result_.durable) {
    Settle(i, name, delta, /*kept=*/true);
  } else {
    node.unflushed.emplace_back(name, delta);
  }
}

// A client retries an Idempotency-Key increment node i acknowledged a while
// ago. It is a replay unless the node lost the increment since (a crash in
// the default mode, a copy put back), when it applies again.
void Simulation::RetryKeyed(int i) {
  SimNode& node = nodes_[i];
  if (node.keyed.empty()) return;
  const SimNode::Keyed k = node.keyed[random_.Below(node.keyed.size())];
  IdempotentOutcome outcome = IdempotentOutcome::kApplied;
  int reply = 0;
  Status s = node.store->IncrementOnce(k.key, KeyedFingerprint(k.name, k.delta),
                                       204, k.name, k.delta, &outcome, &reply);
  const char* what = outcome == IdempotentOutcome::kReplayed  ? "replayed"
                     : outcome == IdempotentOutcome::kApplied ? "applied"
                                                              : "key reused";
  Trace(Name(i) + " retries " + k.key + " (" + k.name + " " +
        std::to_string(k.delta) + ") -> " + (s.ok() ? what : s.ToString()));
  if (!s.ok() || outcome == IdempotentOutcome::kReplayed) return;
  if (outcome != IdempotentOutcome::kApplied || node.losses == k.losses) {
    return Fail(Name(i) + " applied retried key " + k.key + " twice");
  }
  if (Survived(k)) {
    // Default mode: the key went with the crash, but a peer had pulled
    // the increment: the retry counts it twice. Known; counted, not failed.
    ++result_.double_applied;
    Trace(Name(i) + " counted " + k.key +
          " twice: a peer had pulled its first increment");
  }
  CheckNotHidden(i, k.name);
  node.unflushed.emplace_back(k.name, k.delta);
}

bool Simulation::Survived(const SimNode::Keyed& k) const {
  for (const SimNode& node : nodes_) {
    if (!node.store) continue;
    PnCounter state;
    (void)node.store->Get(k.name, &state);
    const auto it = state.actors().find(k.actor);
    if (it == state.actors().end()) continue;
    if (k.delta > 0 ? it->second.p >= k.after.p : it->second.n >= k.after.n) {
      return true;
    }
  }
  return false;
}

// An actor id is never reused with a lower count: right after an
// increment, no node holds more for the incrementing actor than its node
// does, or the max-merge hides the increment there.
void Simulation::CheckNotHidden(int i, const std::string& name) {
  const std::string actor = nodes_[i].store->actor_id();
  PnCounter mine;
  (void)nodes_[i].store->Get(name, &mine);
  const auto own = mine.actors().find(actor);
  if (own == mine.actors().end()) return;  // a zero delta
  for (size_t j = 0; j < nodes_.size(); ++j) {
    if (static_cast<int>(j) == i || !nodes_[j].store) continue;
    PnCounter theirs;
    (void)nodes_[j].store->Get(name, &theirs);
    const auto it = theirs.actors().find(actor);
    if (it == theirs.actors().end()) continue;
    if (it->second.p > own->second.p || it->second.n > own->second.n) {
      return Fail("an acknowledged increment of " + name + " at " + Name(i) +
                      " is hidden: " + Name(static_cast<int>(j)) +
                      " holds more for its actor",
                  actor + " p=" + std::to_string(own->second.p) +
                      " n=" + std::to_string(own->second.n) +
                      " vs p=" + std::to_string(it->second.p) +
                      " n=" + std::to_string(it->second.n));
    }
  }
}

void Simulation::Reset(int i) {
  const std::string name = Counter(static_cast<int>(
      random_.Below(static_cast<uint64_t>(std::max(1, options_.counters)))));
  Status s = nodes_[i].store->Reset(name);
  Trace(Name(i) + " reset " + name + " -> " + (s.ok() ? "OK" : s.ToString()));
}

void Simulation::Flush(int i) {
  SimNode& node = nodes_[i];
  Status s = node.store->Flush();
  Trace(Name(i) + " flush -> " + (s.ok() ? "OK" : s.ToString()));
  if (!s.ok()) return;
  for (const auto& [name, delta] : node.unflushed) {
    Settle(i, name, delta, /*kept=*/true);
  }
  node.unflushed.clear();
}

void Simulation::Pull(int i, int j) {
  SimNode& node = nodes_[i];
  std::vector<PnCounter> before(options_.counters);
  for (int k = 0; k < options_.counters; ++k) {
    (void)node.store->Get(Counter(k), &before[k]);
  }
  Trace(Name(i) + " pulls " + Name(j));
  const std::string actor = node.store->actor_id();
  Status s = node.merger->PullOnce(nodes_[j].address);
  Trace(Name(i) + " pulled " + Name(j) + " -> " +
        (s.ok()
             ? "OK"
             : std::string(s.IsUnavailable() ? "Unavailable" : s.ToString())));
  if (node.store->actor_id() != actor) {
    ++result_.moves;
    Trace(Name(i) + " moved to a new incarnation");
  }
  ObserveActors();
  for (int k = 0; k < options_.counters; ++k) {
    PnCounter after;
    (void)node.store->Get(Counter(k), &after);
    if (!Grew(before[k], after)) {
      return Fail(
          Name(i) + " went backwards on " + Counter(k) + " pulling " + Name(j),
          before[k].DebugString() + " -> " + after.DebugString());
    }
    if (nodes_[j].state == NodeState::kDown) continue;
    PnCounter theirs;
    (void)nodes_[j].store->Get(Counter(k), &theirs);
    PnCounter ab = after, ba = theirs;
    ab.Merge(theirs);
    ba.Merge(after);
    PnCounter again = ab;
    if (ab != ba || again.Merge(theirs) || again.Merge(after)) {
      return Fail("merge of " + Name(i) + " and " + Name(j) + " on " +
                  Counter(k) + " is not commutative or idempotent");
    }
  }
}

// A consistent read at node i: the counter fetched from every peer at once
// (Merger::RefreshCounter, through the transport). It never moves the node.
void Simulation::Refresh(int i) {
  SimNode& node = nodes_[i];
  const std::string name = Counter(static_cast<int>(
      random_.Below(static_cast<uint64_t>(std::max(1, options_.counters)))));
  PnCounter before, after;
  (void)node.store->Get(name, &before);
  const std::string actor = node.store->actor_id();
  std::vector<std::string> unreachable;
  Status s = node.merger->RefreshCounter(name, &unreachable);
  Trace(Name(i) + " refreshes " + name + " -> " +
        (s.ok() ? std::string("OK")
                : std::to_string(unreachable.size()) + " unreachable"));
  (void)node.store->Get(name, &after);
  if (!Grew(before, after)) {
    return Fail(Name(i) + " went backwards on " + name + " refreshing",
                before.DebugString() + " -> " + after.DebugString());
  }
  if (node.store->actor_id() != actor) {
    Fail(Name(i) + " moved to a new incarnation on a refresh");
  }
}

void Simulation::RunEvent() {
  now_ms_ += random_.Between(1, 500);
  const std::vector<int> up = Nodes(NodeState::kUp);
  const int n = static_cast<int>(nodes_.size());
  const uint64_t roll = random_.Below(100);
  const int any = static_cast<int>(random_.Below(static_cast<uint64_t>(n)));
  const int other = static_cast<int>(random_.Below(static_cast<uint64_t>(n)));
  const int pick = up.empty() ? -1 : up[random_.Below(up.size())];
  if (roll < 30) {
    if (pick >= 0) Increment(pick);
  } else if (roll < 33) {
    if (pick >= 0 && result_.resets) Reset(pick);
  } else if (roll < 38) {
    if (pick >= 0) Flush(pick);
  } else if (roll < 70) {
    if (pick >= 0 && other != pick) Pull(pick, other);
  } else if (roll < 72) {
    if (pick >= 0) RetryKeyed(pick);
  } else if (roll < 75) {
    if (pick >= 0) Refresh(pick);
  } else if (roll < 80) {
    const bool both = random_.Percent(50);
    const bool cut = random_.Percent(50);
    if (any != other) {
      network_->SetCut(any, other, cut);
      if (both) network_->SetCut(other, any, cut);
      Trace((cut ? "cut " : "repair ") + Name(any) + (both ? "<->" : "->") +
            Name(other));
    }
  } else if (roll < 84) {
    if (nodes_[any].state == NodeState::kUp && up.size() > 1) {
      nodes_[any].state = NodeState::kPaused;
      Trace(Name(any) + " pauses");
    } else if (nodes_[any].state == NodeState::kPaused) {
      nodes_[any].state = NodeState::kUp;
      Trace(Name(any) + " resumes");
    }
  } else if (roll < 88) {
    if (nodes_[any].state == NodeState::kUp && up.size() > 1) Crash(any);
  } else if (roll < 92) {
    if (nodes_[any].state != NodeState::kDown) return;
    if (nodes_[any].joined) {
      Restart(any);
    } else {
      Join(any);
    }
  } else if (roll < 97) {
    SimNode& node = nodes_[any];
    if (!options_.restores || node.state != NodeState::kUp) return;
    const bool behind = node.store->incarnation() != node.snapshot_incarnation;
    if (node.snapshot.empty() || random_.Percent(50) ||
        (behind && !options_.restores_behind)) {
      TakeSnapshot(any);
    } else {
      RestoreSnapshot(any);
    }
  } else {
    if (pick >= 0) ChangeMembership(pick);
  }
}

void Simulation::Heal() {
  Trace("heal");
  network_->HealAll();
  for (size_t i = 0; i < nodes_.size() && result_.ok; ++i) {
    const int index = static_cast<int>(i);
    SimNode& node = nodes_[i];
    if (node.state == NodeState::kDown && node.joined) Restart(index);
    if (node.state == NodeState::kDown) Join(index);
    if (!result_.ok) return;
    node.state = NodeState::kUp;
    if (node.store->Peers() != AllPeers(index)) {
      (void)node.store->SetPeers(AllPeers(index));
      node.merger->SetPeers(AllPeers(index));
    }
    // No crash follows: what was acknowledged stays.
    for (const auto& [name, delta] : node.unflushed) {
      Settle(index, name, delta, /*kept=*/true);
    }
    node.unflushed.clear();
  }
  const int n = static_cast<int>(nodes_.size());
  std::string detail;
  for (int round = 1; round <= n + 4 && result_.ok; ++round) {
    now_ms_ += 1000;
    for (int i = 0; i < n && result_.ok; ++i) {
      for (int j = 0; j < n && result_.ok; ++j) {
        if (i != j) Pull(i, j);
      }
    }
    bool agree = true;
    for (int k = 0; k < options_.counters && agree; ++k) {
      PnCounter first;
      (void)nodes_[0].store->Get(Counter(k), &first);
      for (int i = 1; i < n && agree; ++i) {
        PnCounter state;
        (void)nodes_[i].store->Get(Counter(k), &state);
        agree = state == first;
        detail = Counter(k) + " n0 " + first.DebugString() + " " + Name(i) +
                 " " + state.DebugString();
      }
    }
    if (agree) {
      result_.heal_rounds = round;
      return;
    }
  }
  Fail("the nodes do not agree after " + std::to_string(n + 4) +
           " rounds of pulls",
       detail);
}

void Simulation::CheckEnd() {
  for (int k = 0; k < options_.counters && result_.ok; ++k) {
    const std::string name = Counter(k);
    PnCounter state;
    (void)nodes_[0].store->Get(name, &state);
    for (const SimNode& node : nodes_) {
      PnCounter mine;
      (void)node.store->Get(name, &mine);
      result_.max_actors = std::max(result_.max_actors, mine.actors().size());
    }
    const __int128 value = state.Value();
    Trace(name + " = " + Int128(value) + " on every node");
    if (result_.resets) continue;
    const Bounds& b = bounds_[name];
    const __int128 low = b.certain + b.maybe_down;
    const __int128 high = b.certain + b.maybe_up;
    if (value < low || value > high) {
      Fail(name + " is " + Int128(value) + ", outside [" + Int128(low) + ", " +
           Int128(high) + "] (certain " + Int128(b.certain) + ")");
    }
  }
  // Health as the mergers see it, on the simulated clock: every peer
  // answered within the last rounds.
  for (size_t i = 0; i < nodes_.size() && result_.ok; ++i) {
    const size_t connected = nodes_[i].merger->ConnectedNodes().size();
    if (connected + 1 != nodes_.size()) {
      Fail(Name(static_cast<int>(i)) + " sees " + std::to_string(connected) +
           " of " + std::to_string(nodes_.size() - 1) +
           " peers connected after the heal");
    }
  }
  result_.actor_ids = actor_ids_.size();
  if (result_.ok && result_.max_actors > actor_ids_.size()) {
    Fail("a counter has " + std::to_string(result_.max_actors) +
         " actors but only " + std::to_string(actor_ids_.size()) +
         " actor ids existed");
  }
}

SimResult Simulation::Run() {
  result_.durable = random_.Percent(50);
  result_.resets = random_.Percent(25);
  Trace("seed=" + std::to_string(options_.seed) +
        " nodes=" + std::to_string(options_.nodes) +
        " events=" + std::to_string(options_.max_events) +
        " durable=" + std::to_string(result_.durable) +
        " resets=" + std::to_string(result_.resets) +
        " restores=" + std::to_string(options_.restores) +
        " restores_behind=" + std::to_string(options_.restores_behind));
  if (Setup()) {
    for (int e = 0; e < options_.max_events && result_.ok; ++e) {
      RunEvent();
      ObserveActors();
      ++result_.events;
    }
    if (result_.ok) Heal();
    if (result_.ok) CheckEnd();
  }
  result_.trace_hash = Fnv1a(result_.trace);
  return std::move(result_);
}

}  // namespace sim

SimResult RunSimulation(const SimOptions& options) {
  sim::Simulation simulation(options);
  return simulation.Run();
}

std::string ReplayCommand(const SimOptions& options) {
  return "scripts/sim.sh --seed " + std::to_string(options.seed) + " --nodes " +
         std::to_string(options.nodes) + " --events " +
         std::to_string(options.max_events) +
         (options.restores ? " --restores" : "") +
         (options.restores_behind ? " --restores_behind" : "") + " --trace";
}

}  // namespace dist_counter
