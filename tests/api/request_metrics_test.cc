// RequestMetrics: every answered request is counted in its (route, status)
// series, known pairs and unknown ones alike, from many threads at once.

#include "api/request_metrics.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "util/metrics.h"

namespace dist_counter {
namespace {

uint64_t Requests(Metrics* metrics, const std::string& labels) {
  return metrics->Counter("dist_counter_http_requests_total", labels)->load();
}

TEST(RequestMetricsTest, CountsKnownPairsInTheirOwnSeries) {
  Metrics metrics;
  RequestMetrics requests(&metrics);
  requests.Count("ping", 200);
  requests.Count("ping", 200);
  requests.Count("counter", 204);
  requests.Count("counter", 503);
  EXPECT_EQ(Requests(&metrics, "route=\"ping\",status=\"200\""), 2u);
  EXPECT_EQ(Requests(&metrics, "route=\"counter\",status=\"204\""), 1u);
  EXPECT_EQ(Requests(&metrics, "route=\"counter\",status=\"503\""), 1u);
  EXPECT_EQ(Requests(&metrics, "route=\"counter\",status=\"200\""), 0u);
}

TEST(RequestMetricsTest, CountsRoutesAndStatusesOutsideTheLists) {
  Metrics metrics;
  RequestMetrics requests(&metrics);
  requests.Count("some_new_route", 200);
  requests.Count("some_new_route", 200);
  requests.Count("ping", 418);
  EXPECT_EQ(Requests(&metrics, "route=\"some_new_route\",status=\"200\""), 2u);
  EXPECT_EQ(Requests(&metrics, "route=\"ping\",status=\"418\""), 1u);
}

TEST(RequestMetricsTest, LabelsAreComparedByTextNotByAddress) {
  Metrics metrics;
  RequestMetrics requests(&metrics);
  const std::string route = "counter_value";  // not the literal's address
  requests.Count(route.c_str(), 200);
  requests.Count("counter_value", 200);
  EXPECT_EQ(Requests(&metrics, "route=\"counter_value\",status=\"200\""), 2u);
}

TEST(RequestMetricsTest, ConcurrentCountsAreAllKept) {
  Metrics metrics;
  RequestMetrics requests(&metrics);
  constexpr int kThreads = 8;
  constexpr int kEach = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&requests, t] {
      for (int i = 0; i < kEach; ++i) {
        requests.Count(t % 2 == 0 ? "counter" : "counter_value",
                       i % 2 == 0 ? 204 : 200);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const uint64_t total =
      Requests(&metrics, "route=\"counter\",status=\"204\"") +
      Requests(&metrics, "route=\"counter\",status=\"200\"") +
      Requests(&metrics, "route=\"counter_value\",status=\"204\"") +
      Requests(&metrics, "route=\"counter_value\",status=\"200\"");
  EXPECT_EQ(total, static_cast<uint64_t>(kThreads) * kEach);
}

TEST(RequestMetricsTest, WithoutMetricsEveryCountReturnsQuietly) {
  // Null Metrics: nothing to count into. Each path (a known pair, an
  // unknown route, an unknown status) must return without touching it; a
  // child runs them so that a crash fails the assertion, not the binary.
  EXPECT_EXIT(
      {
        RequestMetrics requests(nullptr);
        requests.Count("ping", 200);
        requests.Count("ping", 200);
        requests.Count("some_new_route", 200);
        requests.Count("ping", 418);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace dist_counter
