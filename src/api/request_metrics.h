// RequestMetrics counts answered requests in the Prometheus counter
// dist_counter_http_requests_total{route="...",status="..."}.
//
// The hot path takes no lock and builds no string: each (route, status)
// pair of the known routes and statuses (the list in api/http_status.h)
// has a slot that holds its series once the pair was first seen, so only
// the first request of a pair calls Metrics::Counter() (a lock and a map
// lookup). A route or status outside the known lists still counts, through
// that slower path every time.
//
// Thread-safe: Count() may run on any thread at once.

#ifndef DIST_COUNTER_API_REQUEST_METRICS_H_
#define DIST_COUNTER_API_REQUEST_METRICS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>

namespace dist_counter {

class Metrics;

class RequestMetrics {
 public:
  // Does not own `metrics`, which must outlive this object; null counts
  // nothing.
  explicit RequestMetrics(Metrics* metrics);
  ~RequestMetrics();

  RequestMetrics(const RequestMetrics&) = delete;
  RequestMetrics& operator=(const RequestMetrics&) = delete;

  // Adds one to the series of `route` (a metric label such as
  // "counter_value") and HTTP `status`.
  void Count(std::string_view route, int status);

 private:
  // The series of (route, status), resolved and remembered in its slot.
  std::atomic<uint64_t>* Resolve(int route_index, int status_index,
                                 std::string_view route, int status);

  Metrics* const metrics_;
  // [route_index * kStatusCount + status_index], null until first seen.
  std::unique_ptr<std::atomic<std::atomic<uint64_t>*>[]> slots_;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_API_REQUEST_METRICS_H_
