#include "api/request_metrics.h"

#include <string>

#include "util/metrics.h"

namespace dist_counter {

namespace {

constexpr char kRequestsMetric[] = "dist_counter_http_requests_total";

// The route labels the Api sets, and the statuses it answers with. Others
// still count (slowly); add them here when a route or status is added.
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
constexpr int kStatuses[] = {200, 204, 400, 401, 403, 404, 405, 408, 409,
                             411, 413, 422, 429, 431, 500, 503, 507};
constexpr int kRouteCount = sizeof(kRoutes) / sizeof(kRoutes[0]);
constexpr int kStatusCount = sizeof(kStatuses) / sizeof(kStatuses[0]);

int RouteIndex(std::string_view route) {
  for (int i = 0; i < kRouteCount; ++i) {
    if (route == kRoutes[i]) return i;
  }
  return -1;
}

int StatusIndex(int status) {
  for (int i = 0; i < kStatusCount; ++i) {
    if (kStatuses[i] == status) return i;
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
      slots_(
          new std::atomic<std::atomic<uint64_t>*>[kRouteCount * kStatusCount]) {
  for (int i = 0; i < kRouteCount * kStatusCount; ++i) {
    slots_[i].store(nullptr, std::memory_order_relaxed);
  }
}

RequestMetrics::~RequestMetrics() = default;

void RequestMetrics::Count(std::string_view route, int status) {
  if (metrics_ == nullptr) return;
  const int r = RouteIndex(route);
  const int s = StatusIndex(status);
  std::atomic<uint64_t>* series = nullptr;
  if (r < 0 || s < 0) {
    series = metrics_->Counter(kRequestsMetric, Labels(route, status));
  } else {
    series = slots_[r * kStatusCount + s].load(std::memory_order_acquire);
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
  slots_[route_index * kStatusCount + status_index].store(
      series, std::memory_order_release);
  return series;
}

}  // namespace dist_counter
