// Metrics holds the node's counters and gauges and renders them in the
// Prometheus text exposition format (GET /metrics).
//
// A metric is a name plus an optional label set such as
// `route="value",status="200"`. Counter() and Gauge() return a pointer that
// stays valid as long as the Metrics object; callers keep it and update it
// with relaxed atomics, so the hot path takes no lock.
//
// Thread-safe: every method may be called from any thread. Its one lock
// (mu_, util/mutex.h; checked by clang's -Wthread-safety) is a leaf: no
// method calls out while holding it (Render() runs the collectors before
// taking it), so callers may hold their own locks when calling in.

#ifndef DIST_COUNTER_UTIL_METRICS_H_
#define DIST_COUNTER_UTIL_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "util/mutex.h"
#include "util/thread_annotations.h"

namespace dist_counter {

class Metrics {
 public:
  Metrics() = default;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Declares `name`'s type ("counter" or "gauge") and help text. `scale`
  // multiplies stored integers when rendered (1e-6 turns microseconds into
  // seconds). Undeclared metrics render as untyped.
  void Describe(const std::string& name, const std::string& type,
                const std::string& help, double scale = 1.0) EXCLUDES(mu_);

  // The monotonically increasing value `name{labels}`, created at 0.
  std::atomic<uint64_t>* Counter(const std::string& name,
                                 const std::string& labels = "") EXCLUDES(mu_);
  // The value `name{labels}` that may go up and down, created at 0.
  std::atomic<int64_t>* Gauge(const std::string& name,
                              const std::string& labels = "") EXCLUDES(mu_);

  // Counter() and Gauge() count their calls per series. Release() takes
  // one call back; when none is left the series is removed: it no longer
  // renders, and the pointer Counter()/Gauge() gave is freed, so each
  // caller must stop using its pointer before its Release(). For series of
  // things that go away, such as a removed peer. Releasing a series that
  // does not exist does nothing.
  void Release(const std::string& name, const std::string& labels = "")
      EXCLUDES(mu_);

  // Registers `collector`, called at each Render() (without Metrics' lock
  // held) to refresh gauges computed on demand, such as a peer's last pull
  // age. It must stay callable for the life of this object.
  void AddCollector(std::function<void()> collector) EXCLUDES(mu_);

  // The whole exposition text, metrics sorted by name.
  std::string Render() const EXCLUDES(mu_);

 private:
  template <typename T>
  struct Series {
    std::unique_ptr<std::atomic<T>> value;
    uint64_t users = 0;  // Counter()/Gauge() calls not yet released
  };
  struct Family {
    std::string type = "untyped";
    std::string help;
    double scale = 1.0;
    std::map<std::string, Series<uint64_t>> counters;  // by labels
    std::map<std::string, Series<int64_t>> gauges;     // by labels
  };

  mutable Mutex mu_;                                        // a leaf
  std::map<std::string, Family> families_ GUARDED_BY(mu_);  // by name
  std::vector<std::function<void()>> collectors_ GUARDED_BY(mu_);
};

// Adds `by` to `metric`; does nothing if `metric` is null (no Metrics).
inline void MetricAdd(std::atomic<uint64_t>* metric, uint64_t by = 1) {
  if (metric != nullptr) metric->fetch_add(by, std::memory_order_relaxed);
}

// Sets `metric` to `value`; does nothing if `metric` is null.
inline void MetricSet(std::atomic<int64_t>* metric, int64_t value) {
  if (metric != nullptr) metric->store(value, std::memory_order_relaxed);
}

// Escapes `value` for use inside a label's double quotes.
std::string EscapeLabelValue(const std::string& value);

}  // namespace dist_counter

#endif  // DIST_COUNTER_UTIL_METRICS_H_
