#include "simulation.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <system_error>
#include <utility>

#include "api/routes.h"
#include "cluster/merger.h"
#include "crdt/pn_counter.h"
#include "sim_network.h"
#include "sim_random.h"
#include "store/counter_store.h"

namespace dist_counter {

namespace {

namespace fs = std::filesystem;

enum class NodeState { kUp, kPaused, kDown };

struct SimNode {
  std::string address;
  std::string dir;
  NodeState state = NodeState::kDown;
  bool joined = true;  // false: not started yet, in no peer list
  std::unique_ptr<CounterStore> store;
  std::unique_ptr<Api> api;
  std::unique_ptr<PeerTransport> transport;
  std::unique_ptr<Merger> merger;
  // Default mode: acknowledged increments not flushed yet (counter, delta).
  std::vector<std::pair<std::string, int64_t>> unflushed;
  // A copy of the data directory taken at a clean stop, or "".
  std::string snapshot;
  uint64_t snapshot_incarnation = 0;  // the incarnation the copy holds
  // Increments of this node certain to be kept since that copy was taken:
  // putting it back loses those not replicated.
  std::vector<std::pair<std::string, int64_t>> since_snapshot;
};

// What a counter's value must and may hold (runs without resets): the sum
// of increments certainly kept, plus any of the uncertain ones.
struct Bounds {
  __int128 certain = 0;
  __int128 maybe_up = 0;    // uncertain positive deltas
  __int128 maybe_down = 0;  // uncertain negative deltas (<= 0)
};

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

class Simulation {
 public:
  explicit Simulation(const SimOptions& options)
      : options_(options), random_(options.seed) {}
  ~Simulation();

  SimResult Run();

 private:
  void Trace(const std::string& line) {
    result_.trace.push_back("t=" + std::to_string(now_ms_) + " " + line);
  }
  // `detail` (states, with their random node ids) stays out of the trace.
  void Fail(const std::string& why, const std::string& detail = "") {
    if (!result_.ok) return;
    result_.ok = false;
    result_.failure = why + (detail.empty() ? "" : ": " + detail);
    Trace("FAILED: " + why);
  }
  std::string Name(int i) const { return "n" + std::to_string(i); }
  std::string Counter(int k) const { return "c" + std::to_string(k); }
  std::vector<std::string> AllPeers(int i) const;
  std::vector<int> Nodes(NodeState state) const;

  bool Setup();
  bool OpenNode(int i);
  void CloseNode(int i);
  void RunEvent();
  void Increment(int i);
  void Reset(int i);
  void Flush(int i);
  void CheckNotHidden(int i, const std::string& name);
  void Pull(int i, int j);
  void Refresh(int i);
  void Join(int i);
  void Crash(int i);
  void Restart(int i);
  void ChangeMembership(int i);
  void TakeSnapshot(int i);
  void RestoreSnapshot(int i);
  void Heal();
  void CheckEnd();
  void ObserveActors();
  void Settle(int i, const std::string& name, int64_t delta, bool kept);

  const SimOptions options_;
  SimRandom random_;
  SimResult result_;
  int64_t now_ms_ = 0;
  std::string root_;
  std::vector<SimNode> nodes_;
  std::unique_ptr<SimNetwork> network_;
  std::map<std::string, Bounds> bounds_;
  std::set<std::string> actor_ids_;
  uint64_t next_key_ = 0;
};

Simulation::~Simulation() {
  for (size_t i = 0; i < nodes_.size(); ++i) CloseNode(static_cast<int>(i));
  network_.reset();
  std::error_code ignored;
  if (!root_.empty()) fs::remove_all(root_, ignored);
}

std::vector<std::string> Simulation::AllPeers(int i) const {
  std::vector<std::string> peers;
  for (size_t j = 0; j < nodes_.size(); ++j) {
    if (static_cast<int>(j) != i) peers.push_back(nodes_[j].address);
  }
  return peers;
}

std::vector<int> Simulation::Nodes(NodeState state) const {
  std::vector<int> found;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].state == state) found.push_back(static_cast<int>(i));
  }
  return found;
}

bool Simulation::Setup() {
  std::string base = options_.work_dir;
  if (base.empty()) {
    // Memory is fastest: every start and durable write syncs.
    const char* tmp = getenv("TMPDIR");
    std::error_code error;
    base = tmp != nullptr && *tmp != '\0'        ? tmp
           : fs::is_directory("/dev/shm", error) ? "/dev/shm"
                                                 : "/tmp";
  }
  std::string pattern = base + "/dc_sim_XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    Fail("cannot make a directory under " + base);
    return false;
  }
  root_ = pattern;
  const int n = std::clamp(options_.nodes, 1, 50);
  nodes_.resize(n);
  std::vector<std::string> addresses;
  for (int i = 0; i < n; ++i) {
    nodes_[i].address = Name(i) + ":7777";
    nodes_[i].dir = root_ + "/" + Name(i);
    addresses.push_back(nodes_[i].address);
  }
  network_ = std::make_unique<SimNetwork>(
      SimNetworkOptions(), addresses,
      [this](int i) -> Api* {
        return nodes_[i].state == NodeState::kUp ? nodes_[i].api.get()
                                                 : nullptr;
      },
      &random_, &result_.trace);
  // In some runs the last node joins later.
  if (n >= 4 && random_.Percent(50)) nodes_[n - 1].joined = false;
  for (int i = 0; i < n; ++i) {
    if (!nodes_[i].joined) continue;
    std::vector<std::string> peers;
    for (int j = 0; j < n; ++j) {
      if (j != i && nodes_[j].joined) peers.push_back(nodes_[j].address);
    }
    if (!OpenNode(i)) return false;
    Status s = nodes_[i].store->SetPeers(peers);
    if (!s.ok()) {
      Fail(Name(i) + " SetPeers: " + s.ToString());
      return false;
    }
    nodes_[i].merger->SetPeers(peers);
  }
  return true;
}

bool Simulation::OpenNode(int i) {
  SimNode& node = nodes_[i];
  StoreOptions options;
  options.data_dir = node.dir;
  options.challenge_id = "sim" + std::to_string(i);
  options.durable = result_.durable;
  // Flushes happen when the simulation says, never on the wall clock.
  options.flush_interval_ms = 3600 * 1000;
  options.max_unflushed_ms = 24 * 3600 * 1000;
  options.close_retry_ms = 0;
  options.now_ms = [this] { return now_ms_; };
  Status s = CounterStore::Open(options, &node.store);
  if (!s.ok()) {
    Fail(Name(i) + " does not open: " + s.ToString());
    return false;
  }
  ApiOptions api_options;
  api_options.consistent_threads = 1;
  api_options.protected_mode = false;
  node.api =
      std::make_unique<Api>(api_options, node.store.get(), nullptr, nullptr);
  node.transport = network_->NewTransport(i);
  MergerOptions merger_options;
  merger_options.transport = node.transport.get();
  merger_options.page_limit = 2;  // several pages per round
  merger_options.now_ms = [this] { return now_ms_; };
  node.merger = std::make_unique<Merger>(merger_options, node.store.get());
  node.state = NodeState::kUp;
  actor_ids_.insert(node.store->actor_id());
  return true;
}

void Simulation::CloseNode(int i) {
  SimNode& node = nodes_[i];
  node.merger.reset();
  if (node.api) node.api->Stop();
  node.api.reset();
  node.transport.reset();
  if (node.store) (void)node.store->Close();
  node.store.reset();
  node.state = NodeState::kDown;
}

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
    s = node.store->IncrementOnce(key, "fp", 204, name, delta, &outcome,
                                  &reply);
    if (s.ok()) {
      // The client did not see the reply and retries.
      Status again = node.store->IncrementOnce(key, "fp", 204, name, delta,
                                               &outcome, &reply);
      if (!again.ok() || outcome != IdempotentOutcome::kReplayed) {
        Fail(what + ": the retry was not a replay: " + again.ToString());
      }
    }
  } else {
    s = node.store->Increment(name, delta);
  }
  Trace(what + " -> " + (s.ok() ? "OK" : s.ToString()));
  if (!s.ok()) return;  // refused: applied nowhere
  CheckNotHidden(i, name);
  if (result_.durable) {
    Settle(i, name, delta, /*kept=*/true);
  } else {
    node.unflushed.emplace_back(name, delta);
  }
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

// Starts node i, which was in no peer list, and adds it to every list.
void Simulation::Join(int i) {
  Trace(Name(i) + " joins");
  if (!OpenNode(i)) return;
  SimNode& node = nodes_[i];
  node.joined = true;
  Status s = node.store->SetPeers(AllPeers(i));
  if (s.ok()) node.merger->SetPeers(AllPeers(i));
  for (SimNode& other : nodes_) {
    if (!other.store || &other == &node) continue;
    std::vector<std::string> peers = other.store->Peers();
    if (std::find(peers.begin(), peers.end(), node.address) != peers.end()) {
      continue;
    }
    peers.push_back(node.address);
    if (other.store->SetPeers(peers).ok()) other.merger->SetPeers(peers);
  }
}

void Simulation::Crash(int i) {
  SimNode& node = nodes_[i];
  // What a kill -9 leaves: the files as they are now (RocksDB's writes are
  // in them; nothing that Close() would still write).
  const std::string copy = node.dir + ".crash";
  std::error_code error;
  fs::copy(node.dir, copy, fs::copy_options::recursive, error);
  if (error) return Fail("copying " + node.dir + ": " + error.message());
  CloseNode(i);
  fs::remove_all(node.dir, error);
  if (!error) fs::rename(copy, node.dir, error);
  if (error) return Fail("replacing " + node.dir + ": " + error.message());
  // Unflushed acknowledged increments may be gone, or live on at peers.
  for (const auto& [name, delta] : node.unflushed) {
    Settle(i, name, delta, /*kept=*/false);
  }
  node.unflushed.clear();
  ++result_.crashes;
  Trace(Name(i) + " crashes");
}

void Simulation::Restart(int i) {
  Trace(Name(i) + " restarts");
  if (!OpenNode(i)) return;
}

void Simulation::ChangeMembership(int i) {
  SimNode& node = nodes_[i];
  std::vector<std::string> peers = node.store->Peers();
  std::vector<std::string> all = AllPeers(i);
  std::string what;
  if (peers.size() < all.size() && random_.Percent(60)) {
    peers = all;
    what = "takes every peer back";
  } else if (!peers.empty()) {
    const size_t drop = random_.Below(peers.size());
    what = "drops peer " + peers[drop].substr(0, peers[drop].find(':'));
    peers.erase(peers.begin() + static_cast<long>(drop));
  } else {
    return;
  }
  Status s = node.store->SetPeers(peers);
  if (s.ok()) node.merger->SetPeers(peers);
  Trace(Name(i) + " " + what + " -> " + (s.ok() ? "OK" : s.ToString()));
}

// Stops node i cleanly, copies its data directory and starts it again (the
// same incarnation: the stop was clean).
void Simulation::TakeSnapshot(int i) {
  SimNode& node = nodes_[i];
  CloseNode(i);  // a clean stop writes everything
  for (const auto& [name, delta] : node.unflushed) {
    Settle(i, name, delta, /*kept=*/true);
  }
  node.unflushed.clear();
  node.snapshot = node.dir + ".snapshot";
  std::error_code error;
  fs::remove_all(node.snapshot, error);
  fs::copy(node.dir, node.snapshot, fs::copy_options::recursive, error);
  if (error) return Fail("copying " + node.dir + ": " + error.message());
  node.since_snapshot.clear();
  Trace(Name(i) + " stops cleanly, its data directory is copied, restarts");
  if (OpenNode(i)) node.snapshot_incarnation = node.store->incarnation();
}

// Stops node i cleanly and starts it on the copy TakeSnapshot() made, as an
// operator putting back a file system snapshot does.
void Simulation::RestoreSnapshot(int i) {
  SimNode& node = nodes_[i];
  CloseNode(i);
  std::error_code error;
  fs::remove_all(node.dir, error);
  if (!error) {
    fs::copy(node.snapshot, node.dir, fs::copy_options::recursive, error);
  }
  if (error) return Fail("restoring " + node.dir + ": " + error.message());
  // What the node held only since the copy is gone from it; peers may
  // still hold it.
  for (const auto& [name, delta] : node.unflushed) {
    Settle(i, name, delta, /*kept=*/false);
  }
  node.unflushed.clear();
  for (const auto& [name, delta] : node.since_snapshot) {
    bounds_[name].certain -= delta;
    Settle(i, name, delta, /*kept=*/false);
  }
  node.since_snapshot.clear();
  Trace(Name(i) + " stops cleanly and restarts on its copied data directory");
  OpenNode(i);
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
  } else if (roll < 72) {
    if (pick >= 0 && other != pick) Pull(pick, other);
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

}  // namespace

SimResult RunSimulation(const SimOptions& options) {
  Simulation simulation(options);
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
