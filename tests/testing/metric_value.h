// MetricValue() reads one series out of the Prometheus text that
// Metrics::Render() and GET /metrics produce, for tests that assert a
// metric's number. A substring search cannot do this: "x_total 2" is also
// found in "x_total 20", and "x_total 0" is absent from a text that lost
// the series altogether.

#ifndef DIST_COUNTER_TESTS_TESTING_METRIC_VALUE_H_
#define DIST_COUNTER_TESTS_TESTING_METRIC_VALUE_H_

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace dist_counter {
namespace test {

// Returns the value of `series` in `metrics_text`, or nullopt if no line
// holds that series. `series` is a metric's full name with its labels as
// rendered (`x_total` or `x_total{route="value",status="200"}`) and must
// match a line's series exactly: `x_total` does not match
// `x_total{...}` nor `x_total_sum`. Comment lines (# HELP, # TYPE) are
// ignored. A value that is not a number (+Inf and NaN are numbers) is
// nullopt too.
inline std::optional<double> MetricValue(std::string_view metrics_text,
                                         std::string_view series) {
  while (!metrics_text.empty()) {
    const size_t end = metrics_text.find('\n');
    std::string_view line = metrics_text.substr(0, end);
    metrics_text.remove_prefix(
        end == std::string_view::npos ? metrics_text.size() : end + 1);
    if (line.empty() || line[0] == '#') continue;
    if (line.size() <= series.size() ||
        line.substr(0, series.size()) != series || line[series.size()] != ' ') {
      continue;
    }
    std::string value(line.substr(series.size() + 1));
    const size_t space = value.find(' ');  // an optional timestamp follows
    if (space != std::string::npos) value.resize(space);
    if (value.empty()) return std::nullopt;
    char* parsed_end = nullptr;
    const double number = std::strtod(value.c_str(), &parsed_end);
    if (parsed_end != value.c_str() + value.size()) return std::nullopt;
    return number;
  }
  return std::nullopt;
}

}  // namespace test
}  // namespace dist_counter

#endif  // DIST_COUNTER_TESTS_TESTING_METRIC_VALUE_H_
