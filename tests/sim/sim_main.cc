// dist_counter_sim: runs deterministic simulations of a cluster
// (tests/sim/simulation.h) and reports every failing seed with the command
// that replays it, and the smallest failing configuration found by
// shrinking it (fewer nodes, fewer events).
//
//   dist_counter_sim --seeds 100              seeds 1..100
//   dist_counter_sim --seed 42 --nodes 5 --events 300 --trace
//
// Exits 0 if every run passed, 1 otherwise.

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>

#include "cluster/peer_client.h"
#include "simulation.h"

DEFINE_uint64(seed, 0, "run this one seed (0: run --seeds seeds)");
DEFINE_uint64(seeds, 20, "without --seed: run seeds first_seed.. this many");
DEFINE_uint64(first_seed, 1, "the first seed of --seeds");
DEFINE_int32(nodes, 0, "nodes per run, 3..50 (0: 3 to 8, picked by the seed)");
DEFINE_int32(events, 300, "events per run before the heal");
DEFINE_bool(restores, false,
            "put data directories back from copies taken at clean stops "
            "(fails: increments before the first pull are hidden)");
DEFINE_bool(restores_behind, false,
            "with --restores, also after the node moved to later "
            "incarnations (fails: the node never converges)");
DEFINE_bool(trace, false, "print each run's trace");
DEFINE_bool(shrink, true, "shrink a failing seed to its smallest failure");
DEFINE_string(work_dir, "", "where data directories go (default $TMPDIR)");

namespace dist_counter {
namespace {

SimOptions OptionsFor(uint64_t seed) {
  SimOptions options;
  options.seed = seed;
  options.nodes =
      FLAGS_nodes > 0 ? FLAGS_nodes : 3 + static_cast<int>(seed % 6);
  options.max_events = FLAGS_events;
  options.work_dir = FLAGS_work_dir;
  options.restores = FLAGS_restores;
  options.restores_behind = FLAGS_restores_behind;
  return options;
}

// Tries fewer nodes, then fewer events (a prefix of the same run), and
// returns the smallest configuration that still fails.
SimOptions Shrink(SimOptions failing) {
  for (int nodes = 3; nodes < failing.nodes; ++nodes) {
    SimOptions smaller = failing;
    smaller.nodes = nodes;
    if (!RunSimulation(smaller).ok) {
      failing = smaller;
      break;
    }
  }
  int low = 0, high = failing.max_events;  // high fails
  while (low + 1 < high) {
    SimOptions shorter = failing;
    shorter.max_events = (low + high) / 2;
    if (RunSimulation(shorter).ok) {
      low = shorter.max_events;
    } else {
      high = shorter.max_events;
    }
  }
  failing.max_events = high;
  return failing;
}

int Main() {
  const uint64_t first = FLAGS_seed != 0 ? FLAGS_seed : FLAGS_first_seed;
  const uint64_t count = FLAGS_seed != 0 ? 1 : FLAGS_seeds;
  const auto start = std::chrono::steady_clock::now();
  int failures = 0;
  size_t max_actors = 0;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    const SimOptions options = OptionsFor(seed);
    const SimResult result = RunSimulation(options);
    max_actors = std::max(max_actors, result.max_actors);
    if (FLAGS_trace) {
      for (const std::string& line : result.trace) printf("%s\n", line.c_str());
    }
    printf("seed %" PRIu64
           ": %s (nodes %d, events %d, durable %d, resets %d, "
           "crashes %d, moves %d, retries counted twice %d, heal rounds %d, "
           "max actors %zu of %zu ids, "
           "trace %016" PRIx64 ")\n",
           seed, result.ok ? "ok" : "FAILED", options.nodes, result.events,
           result.durable, result.resets, result.crashes, result.moves,
           result.double_applied, result.heal_rounds, result.max_actors,
           result.actor_ids, result.trace_hash);
    fflush(stdout);
    if (result.ok) continue;
    ++failures;
    printf("  %s\n  replay: %s\n", result.failure.c_str(),
           ReplayCommand(options).c_str());
    if (FLAGS_shrink) {
      const SimOptions smallest = Shrink(options);
      printf("  smallest failing: %s\n", ReplayCommand(smallest).c_str());
    }
    fflush(stdout);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  printf("%" PRIu64
         " seed(s), %d failed, %.1f s, %.2f seeds/s, max actors "
         "%zu\n",
         count, failures, seconds, count / std::max(seconds, 1e-9), max_actors);
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace dist_counter

int main(int argc, char** argv) {
  gflags::SetUsageMessage("deterministic simulation of a dist_counter cluster");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_minloglevel = 3;  // the nodes' own logs would drown the report
  google::InitGoogleLogging(argv[0]);
  if (!dist_counter::InitPeerClients()) return 2;
  return dist_counter::Main();
}
