#include "testing/metric_value.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace dist_counter {
namespace test {
namespace {

const char kText[] =
    "# HELP x_total things\n"
    "# TYPE x_total counter\n"
    "x_total 20\n"
    "x_total{reason=\"missing\"} 2\n"
    "x_total{reason=\"missing_too\"} 7\n"
    "x_total_sum 3.5\n"
    "age_seconds{peer=\"127.0.0.1:8888\"} 0.42399999999999999\n"
    "big 18446744073709551615\n"
    "neg -4\n"
    "inf +Inf\n"
    "stamped 5 1700000000000\n"
    "broken 12abc\n"
    "last_line_without_newline 9";

TEST(MetricValueTest, ReadsTheValueOfTheExactSeries) {
  EXPECT_EQ(MetricValue(kText, "x_total"), 20.0);
  EXPECT_EQ(MetricValue(kText, "x_total{reason=\"missing\"}"), 2.0);
  EXPECT_EQ(MetricValue(kText, "x_total{reason=\"missing_too\"}"), 7.0);
  EXPECT_EQ(MetricValue(kText, "x_total_sum"), 3.5);
  EXPECT_EQ(MetricValue(kText, "age_seconds{peer=\"127.0.0.1:8888\"}"), 0.424);
  EXPECT_EQ(MetricValue(kText, "big"), 18446744073709551615.0);
  EXPECT_EQ(MetricValue(kText, "neg"), -4.0);
  EXPECT_EQ(MetricValue(kText, "stamped"), 5.0);
  EXPECT_EQ(MetricValue(kText, "last_line_without_newline"), 9.0);
  std::optional<double> inf = MetricValue(kText, "inf");
  ASSERT_TRUE(inf.has_value());
  EXPECT_TRUE(std::isinf(*inf));
}

TEST(MetricValueTest, APrefixOrAnotherLabelSetIsNotAMatch) {
  EXPECT_EQ(MetricValue(kText, "x_tot"), std::nullopt);
  EXPECT_EQ(MetricValue(kText, "x"), std::nullopt);
  EXPECT_EQ(MetricValue(kText, "x_total{reason=\"miss\"}"), std::nullopt);
  EXPECT_EQ(MetricValue(kText, "x_total{reason=\"missing\""), std::nullopt);
  EXPECT_EQ(MetricValue(kText, "age_seconds"), std::nullopt);
}

TEST(MetricValueTest, AMissingSeriesOrABadValueIsNullopt) {
  EXPECT_EQ(MetricValue(kText, "absent_total"), std::nullopt);
  EXPECT_EQ(MetricValue(kText, "broken"), std::nullopt);
  EXPECT_EQ(MetricValue("", "x_total"), std::nullopt);
  EXPECT_EQ(MetricValue("x_total \n", "x_total"), std::nullopt);
  EXPECT_EQ(MetricValue("x_total\n", "x_total"), std::nullopt);
}

TEST(MetricValueTest, CommentLinesAreNeverSeries) {
  EXPECT_EQ(MetricValue("# x_total 3\n", "# x_total"), std::nullopt);
  EXPECT_EQ(MetricValue("# x_total 3\nx_total 4\n", "x_total"), 4.0);
}

}  // namespace
}  // namespace test
}  // namespace dist_counter
