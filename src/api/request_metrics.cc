#include "api/request_metrics.h"

#include <string>

#include "api/http_status.h"
#include "util/metrics.h"

namespace dist_counter {

namespace {

constexpr char kRequestsMetric[] = "dist_counter_http_requests_total";

// The route labels the Api sets; the statuses are api/http_status.h's list.
// Others still count (slowly); add a route here when one is added.
constexpr const char* kRoutes[] = {
    "ping",
    "config",
    "metrics",
    "counters",
    "counter",
    "counter_value",
    "counter_consistent_value",
    "internal_changes",
    "internal_counter",
    "admin_backup",
    "admin_backups",
    "unauthorized",
    "unknown",
};
constexpr int kRouteCount = sizeof(kRoutes) / sizeof(kRoutes[0]);

int StatusCount() { return static_cast<int>(HttpStatusCount()); }

int RouteIndex(std::string_view route) {
  for (int i = 0; i < kRouteCount; ++i) {
    if (route == kRoutes[i]) return i;
  }
  return -1;
}

std::string Labels(std::string_view route, int status) {
  return std::string("route=\"").append(route) + "\",status=\"" +
         std::to_string(status) + "\"";
}

}  // namespace

RequestMetrics::RequestMetrics(Metrics* metrics)
    : metrics_(metrics),
      slots_(new std::atomic<std::atomic<uint64_t>*>[kRouteCount *
                                                     StatusCount()]) {
  for (int i = 0; i < kRouteCount * StatusCount(); ++i) {
    slots_[i].store(nullptr, std::memory_order_relaxed);
  }
}

RequestMetrics::~RequestMetrics() = default;

void RequestMetrics::Count(std::string_view route, int status) {
  if (metrics_ == nullptr) return;
  const int r = RouteIndex(route);
  const int s = HttpStatusIndex(status);
  std::atomic<uint64_t>* series = nullptr;
  if (r < 0 || s < 0) {
    series = metrics_->Counter(kRequestsMetric, Labels(route, status));
  } else {
    series = slots_[r * StatusCount() + s].load(std::memory_order_acquire);
    if (series == nullptr) series = Resolve(r, s, route, status);
  }
  series->fetch_add(1, std::memory_order_relaxed);
}

std::atomic<uint64_t>* RequestMetrics::Resolve(int route_index,
                                               int status_index,
                                               std::string_view route,
                                               int status) {
  // Two threads may resolve the same pair at once: Metrics hands both the
  // same series, so either store is right.
  std::atomic<uint64_t>* series =
      metrics_->Counter(kRequestsMetric, Labels(route, status));
  slots_[route_index * StatusCount() + status_index].store(
      series, std::memory_order_release);
  return series;
}

}  // namespace dist_counter
