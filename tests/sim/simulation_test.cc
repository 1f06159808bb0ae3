#include "simulation.h"

#include <glog/logging.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace dist_counter {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// Seeds SeedsPass runs: about a minute's worth, far fewer under ASan;
// DIST_COUNTER_SIM_SEEDS overrides it.
uint64_t SeedCount() {
  const char* env = std::getenv("DIST_COUNTER_SIM_SEEDS");
  if (env != nullptr && *env != '\0') return std::strtoull(env, nullptr, 10);
  return kSanitized ? 10 : 150;
}

SimOptions Options(uint64_t seed, int nodes, int events) {
  SimOptions options;
  options.seed = seed;
  options.nodes = nodes;
  options.max_events = events;
  return options;
}

TEST(SimulationTest, SameSeedGivesTheSameTrace) {
  const SimResult a = RunSimulation(Options(7, 4, 200));
  const SimResult b = RunSimulation(Options(7, 4, 200));
  ASSERT_EQ(a.trace.size(), b.trace.size());
  for (size_t i = 0; i < a.trace.size(); ++i) {
    ASSERT_EQ(a.trace[i], b.trace[i]) << "line " << i;
  }
  EXPECT_EQ(a.trace_hash, b.trace_hash);
}

TEST(SimulationTest, AnotherSeedGivesAnotherTrace) {
  EXPECT_NE(RunSimulation(Options(7, 4, 200)).trace_hash,
            RunSimulation(Options(8, 4, 200)).trace_hash);
}

TEST(SimulationTest, SeedsPass) {
  const uint64_t seeds = SeedCount();
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    const SimOptions options = Options(seed, 3 + seed % 6, 300);
    const SimResult result = RunSimulation(options);
    EXPECT_TRUE(result.ok) << result.failure
                           << "\nreplay: " << ReplayCommand(options);
  }
}

// Data directories put back from copies lose increments acknowledged
// before the node's first pull (see merger_test's disabled tests).
// Disabled until that is fixed.
TEST(SimulationTest, DISABLED_SeedsWithRestoredDataDirectoriesPass) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SimOptions options = Options(seed, 3 + seed % 6, 300);
    options.restores = true;
    const SimResult result = RunSimulation(options);
    EXPECT_TRUE(result.ok) << result.failure
                           << "\nreplay: " << ReplayCommand(options);
  }
}

// Default mode: a crash before the flush loses an Idempotency-Key's record,
// but a peer may already have pulled its increment; the client's retry
// then counts it a second time (seed 13: n0's k0, +3 on c1, pulled by n3
// before n0 crashed). Disabled until keys survive that (or the README says
// exactly-once needs --durable).
TEST(SimulationTest, DISABLED_RetriedKeysCountOnceInTheDefaultMode) {
  for (uint64_t seed : {13, 73}) {
    const SimResult result = RunSimulation(Options(seed, 4, 300));
    EXPECT_EQ(result.double_applied, 0) << "seed " << seed;
  }
}

TEST(SimulationTest, ManyNodesConverge) {
  const SimResult result = RunSimulation(Options(3, 20, 200));
  EXPECT_TRUE(result.ok) << result.failure;
  EXPECT_GT(result.heal_rounds, 0);
}

}  // namespace
}  // namespace dist_counter

int main(int argc, char** argv) {
  FLAGS_minloglevel = 3;
  google::InitGoogleLogging(argv[0]);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
