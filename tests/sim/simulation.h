// A deterministic simulation of a dist_counter cluster, after FoundationDB's
// and TigerBeetle's simulators: N real nodes (CounterStore, Api, Merger) in
// one process on one thread, talking over a SimNetwork, with a simulated
// clock, and every choice (client operations, faults, schedule) drawn from
// one SimRandom seeded with the run's seed. The same options give the same
// run and the same trace, byte for byte.
//
// A run is `max_events` events, then a heal (every node up, every link
// restored, full membership, faults off) and pull rounds until the nodes
// agree. Events: increments (some with an Idempotency-Key, retried at once),
// resets (only in runs that the seed picks for them), flushes, pulls of one
// peer by one node (through the real Merger, PeerClient decoding and Api),
// consistent reads (Merger::RefreshCounter: every peer at once),
// one-way and two-way link cuts and their repair, pauses and resumes,
// crashes (RocksDB keeps what was written to it: everything since the last
// flush is lost in the default mode) and restarts (a new incarnation),
// with options.restores a data directory copied at a clean stop and put
// back (the same incarnation with lower counts than peers hold: the
// store must move to a new one), and membership changes (a node drops a
// peer from its list and later takes it back; in some runs the last node
// joins late). The seed also picks durable or default mode.
//
// Checks, the first failure ending the run:
//   - on every pull, no actor's totals or baselines at the puller go
//     backwards, and the merge of the two nodes' states is commutative and
//     idempotent;
//   - after the heal every node holds the same state of every counter;
//   - without resets, each counter's value is within what must have been
//     kept and what may have been (in durable mode every acknowledged
//     increment is kept; in the default mode one is certain once its node
//     flushed after it);
//   - right after an increment, no node holds more for the incrementing
//     actor than its own node does (an actor id is never reused with a
//     lower count: the max-merge would hide the increment);
//   - no counter has more actors than actor ids that ever existed;
//   - after the heal every merger sees every peer connected (on the
//     simulated clock);
//   - a retried Idempotency-Key increment is a replay unless the node may
//     have lost it. In the default mode a crash loses the key, but a peer
//     may have pulled the increment: the retry then counts it twice
//     (SimResult::double_applied, reported, not a failure).
//
// Not thread-safe: one run at a time per object.

#ifndef DIST_COUNTER_TESTS_SIM_SIMULATION_H_
#define DIST_COUNTER_TESTS_SIM_SIMULATION_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dist_counter {

struct SimOptions {
  uint64_t seed = 1;
  int nodes = 5;         // 3..50
  int max_events = 300;  // before the heal
  int counters = 3;      // distinct counter names used
  // Copy data directories at clean stops and put them back later, while
  // the node still runs the incarnation the copy holds. Off by default:
  // increments the node acknowledges before its first pull are hidden
  // behind the counts peers hold for that incarnation (merger_test has it
  // as a disabled test).
  bool restores = false;
  // With restores, also put a copy back after the node moved on to later
  // incarnations. Such a node never converges: it refuses its own later
  // actors from peers (a disabled merger_test too).
  bool restores_behind = false;
  // Where the nodes' data directories go (a fresh subdirectory, removed at
  // the end); empty: $TMPDIR, else /dev/shm, else /tmp.
  std::string work_dir;
};

struct SimResult {
  bool ok = true;
  std::string failure;             // the first failed check, if !ok
  std::vector<std::string> trace;  // one line per event and delivery
  uint64_t trace_hash = 0;         // FNV-1a of the trace's lines
  bool durable = false;            // picked by the seed
  bool resets = false;             // picked by the seed
  int events = 0;                  // events run before the heal
  int crashes = 0;
  int moves = 0;  // incarnation moves made by pulls
  // Default mode: retried Idempotency-Key increments applied again after a
  // crash lost the key although a peer had pulled the first increment.
  int double_applied = 0;
  int heal_rounds = 0;    // pull rounds until the nodes agreed
  size_t max_actors = 0;  // most actors of one counter, any node
  size_t actor_ids = 0;   // distinct actor ids that existed
};

// Runs one simulation. Never throws; problems of the harness itself
// (a store that does not open) are failures too.
SimResult RunSimulation(const SimOptions& options);

// "scripts/sim.sh --seed S --nodes N --events E": replays `options`.
std::string ReplayCommand(const SimOptions& options);

}  // namespace dist_counter

#endif  // DIST_COUNTER_TESTS_SIM_SIMULATION_H_
