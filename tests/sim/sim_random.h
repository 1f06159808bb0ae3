// SimRandom is the simulator's only source of randomness: SplitMix64, so a
// seed gives the same sequence on every platform and standard library
// (std::uniform_int_distribution does not). Every choice a run makes comes
// from one SimRandom seeded with the run's seed.
//
// Not thread-safe; the simulator runs on one thread.

#ifndef DIST_COUNTER_TESTS_SIM_SIM_RANDOM_H_
#define DIST_COUNTER_TESTS_SIM_SIM_RANDOM_H_

#include <cstdint>

namespace dist_counter {

class SimRandom {
 public:
  explicit SimRandom(uint64_t seed) : state_(seed) {}

  // The next 64 random bits.
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // A number in [0, n); 0 if n is 0. The slight modulo bias is harmless.
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }

  // A number in [low, high].
  int64_t Between(int64_t low, int64_t high) {
    return low +
           static_cast<int64_t>(Below(static_cast<uint64_t>(high - low) + 1));
  }

  // True with probability percent/100.
  bool Percent(int percent) { return static_cast<int>(Below(100)) < percent; }

 private:
  uint64_t state_;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_TESTS_SIM_SIM_RANDOM_H_
