// The simulated cluster behind RunSimulation() (simulation.h): its nodes
// and the Simulation that runs one seed over them. Private to
// simulation.cc (events, checks) and sim_nodes.cc (starting, stopping,
// crashing and restoring nodes, peer lists).
//
// Not thread-safe; the simulator runs on one thread.

#ifndef DIST_COUNTER_TESTS_SIM_SIM_CLUSTER_H_
#define DIST_COUNTER_TESTS_SIM_SIM_CLUSTER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "api/routes.h"
#include "cluster/merger.h"
#include "sim_network.h"
#include "sim_random.h"
#include "simulation.h"
#include "store/counter_store.h"

namespace dist_counter {
namespace sim {

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
  // Times this node may have lost acknowledged increments (crashes in the
  // default mode, copies put back).
  int losses = 0;
  // Recent acknowledged Idempotency-Key increments, for late retries.
  struct Keyed {
    std::string key;
    std::string name;
    int64_t delta = 0;
    int losses = 0;     // the node's losses when it was acknowledged
    std::string actor;  // that applied it
    ActorCounts after;  // the actor's totals right after it
  };
  std::vector<Keyed> keyed;
};

// What a counter's value must and may hold (runs without resets): the sum
// of increments certainly kept, plus any of the uncertain ones.
struct Bounds {
  __int128 certain = 0;
  __int128 maybe_up = 0;    // uncertain positive deltas
  __int128 maybe_down = 0;  // uncertain negative deltas (<= 0)
};

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
  void RetryKeyed(int i);
  // True if some node holds increment `k` (its actor's totals reached).
  bool Survived(const SimNode::Keyed& k) const;
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

}  // namespace sim
}  // namespace dist_counter

#endif  // DIST_COUNTER_TESTS_SIM_SIM_CLUSTER_H_
