#include "util/metrics.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace dist_counter {
namespace {

TEST(MetricsTest, EmptyRendersNothing) {
  Metrics m;
  EXPECT_EQ(m.Render(), "");
}

TEST(MetricsTest, DescribedCounterRendersHelpTypeAndSample) {
  Metrics m;
  m.Describe("dc_requests_total", "counter", "Requests served.");
  m.Counter("dc_requests_total")->fetch_add(3);
  EXPECT_EQ(m.Render(),
            "# HELP dc_requests_total Requests served.\n"
            "# TYPE dc_requests_total counter\n"
            "dc_requests_total 3\n");
}

TEST(MetricsTest, UndescribedMetricIsUntypedWithoutHelp) {
  Metrics m;
  m.Gauge("dc_peers")->store(-2);
  EXPECT_EQ(m.Render(),
            "# TYPE dc_peers untyped\n"
            "dc_peers -2\n");
}

TEST(MetricsTest, LabelsGoInBracesSortedWithinTheFamily) {
  Metrics m;
  m.Describe("dc_http_total", "counter", "Replies.");
  m.Counter("dc_http_total", "route=\"value\",status=\"200\"")->store(7);
  m.Counter("dc_http_total", "route=\"incr\",status=\"204\"")->store(5);
  m.Counter("dc_http_total")->store(1);
  EXPECT_EQ(m.Render(),
            "# HELP dc_http_total Replies.\n"
            "# TYPE dc_http_total counter\n"
            "dc_http_total 1\n"
            "dc_http_total{route=\"incr\",status=\"204\"} 5\n"
            "dc_http_total{route=\"value\",status=\"200\"} 7\n");
}

TEST(MetricsTest, FamiliesAreSortedByName) {
  Metrics m;
  m.Gauge("b_gauge")->store(2);
  m.Counter("a_counter")->store(1);
  m.Counter("c_counter")->store(3);
  const std::string out = m.Render();
  const size_t a = out.find("a_counter 1\n");
  const size_t b = out.find("b_gauge 2\n");
  const size_t c = out.find("c_counter 3\n");
  ASSERT_NE(a, std::string::npos) << out;
  ASSERT_NE(b, std::string::npos) << out;
  ASSERT_NE(c, std::string::npos) << out;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

TEST(MetricsTest, ScaleMultipliesRenderedValues) {
  Metrics m;
  m.Describe("dc_flush_seconds_total", "counter", "Flush time.", 1e-6);
  m.Counter("dc_flush_seconds_total")->store(1500000);  // microseconds
  EXPECT_EQ(m.Render(),
            "# HELP dc_flush_seconds_total Flush time.\n"
            "# TYPE dc_flush_seconds_total counter\n"
            "dc_flush_seconds_total 1.5\n");
}

TEST(MetricsTest, SamePointerForSameNameAndLabels) {
  Metrics m;
  std::atomic<uint64_t>* a = m.Counter("x", "k=\"1\"");
  EXPECT_EQ(m.Counter("x", "k=\"1\""), a);
  EXPECT_NE(m.Counter("x", "k=\"2\""), a);
  EXPECT_NE(m.Counter("y", "k=\"1\""), a);
  std::atomic<int64_t>* g = m.Gauge("g");
  EXPECT_EQ(m.Gauge("g"), g);
  // Describing later keeps the values already counted.
  a->store(9);
  m.Describe("x", "counter", "X.");
  EXPECT_EQ(m.Counter("x", "k=\"1\"")->load(), 9u);
}

TEST(MetricsTest, ReleaseRemovesASeriesOnceEveryUserReleasedIt) {
  Metrics m;
  m.Describe("x", "counter", "X.");
  m.Counter("x", "peer=\"a\"")->fetch_add(2);
  m.Counter("x", "peer=\"a\"");  // a second user of the same series
  m.Counter("x", "peer=\"b\"")->fetch_add(5);
  m.Gauge("g", "peer=\"a\"")->store(1);
  m.Release("x", "peer=\"a\"");
  EXPECT_NE(m.Render().find("x{peer=\"a\"} 2\n"), std::string::npos);
  m.Release("x", "peer=\"a\"");
  m.Release("g", "peer=\"a\"");
  m.Release("x", "peer=\"never\"");  // nothing to release
  m.Release("nothing");
  const std::string text = m.Render();
  EXPECT_EQ(text.find("peer=\"a\""), std::string::npos) << text;
  EXPECT_NE(text.find("x{peer=\"b\"} 5\n"), std::string::npos) << text;
  // Asked for again, a released series starts over.
  EXPECT_EQ(m.Counter("x", "peer=\"a\"")->load(), 0u);
}

TEST(MetricsTest, LargeCountersRenderAsIntegers) {
  Metrics m;
  m.Counter("big")->store(123456789);
  EXPECT_EQ(m.Render(), "# TYPE big untyped\nbig 123456789\n");
}

TEST(MetricsTest, CollectorsRunAtEachRenderAndMayUpdateGauges) {
  Metrics m;
  m.Describe("dc_age", "gauge", "Age.");
  int calls = 0;
  // The collector takes Metrics' lock itself (through Gauge), which must
  // not deadlock: Render calls it without the lock held.
  m.AddCollector([&m, &calls] { m.Gauge("dc_age")->store(++calls * 10); });
  EXPECT_EQ(m.Render(),
            "# HELP dc_age Age.\n"
            "# TYPE dc_age gauge\n"
            "dc_age 10\n");
  EXPECT_EQ(m.Render(),
            "# HELP dc_age Age.\n"
            "# TYPE dc_age gauge\n"
            "dc_age 20\n");
  EXPECT_EQ(calls, 2);
}

TEST(MetricsTest, ConcurrentUpdatesAreAllCounted) {
  Metrics m;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m, t] {
      for (int i = 0; i < kPerThread; ++i) {
        m.Counter("hits", "t=\"" + std::to_string(t % 2) + "\"")
            ->fetch_add(1, std::memory_order_relaxed);
        if (i % 1000 == 0) m.Render();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(m.Counter("hits", "t=\"0\"")->load() +
                m.Counter("hits", "t=\"1\"")->load(),
            uint64_t{kThreads} * kPerThread);
}

TEST(MetricsTest, EscapeLabelValue) {
  EXPECT_EQ(EscapeLabelValue("plain:7777"), "plain:7777");
  EXPECT_EQ(EscapeLabelValue("a\"b"), "a\\\"b");
  EXPECT_EQ(EscapeLabelValue("a\\b"), "a\\\\b");
  EXPECT_EQ(EscapeLabelValue("a\nb"), "a\\nb");
  EXPECT_EQ(EscapeLabelValue(""), "");
}

}  // namespace
}  // namespace dist_counter
