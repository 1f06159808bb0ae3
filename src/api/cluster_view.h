// ClusterView is what the HTTP API needs from the cluster layer, so api/
// does not depend on how peers are reached. node/ wires the real
// implementation (cluster/); with no cluster, the API runs without one.
//
// Implementations must be safe to call from many threads at once.

#ifndef DIST_COUNTER_API_CLUSTER_VIEW_H_
#define DIST_COUNTER_API_CLUSTER_VIEW_H_

#include <string>
#include <vector>

#include "util/status.h"

namespace dist_counter {

class ClusterView {
 public:
  virtual ~ClusterView() = default;

  // Fetches counter `name`'s live state from every configured peer and
  // merges it into the local store, waiting at most the configured peer
  // timeout. Returns OK if every peer answered; otherwise Unavailable, with
  // the peers that did not answer appended to *unreachable.
  virtual Status RefreshCounter(const std::string& name,
                                std::vector<std::string>* unreachable) = 0;

  // The peers that answered a pull recently, as configured ("host:port").
  virtual std::vector<std::string> ConnectedNodes() const = 0;

  // Called after POST /config stored a new peer list.
  virtual void PeersChanged(const std::vector<std::string>& peers) = 0;

  // Makes every RefreshCounter() in progress return Unavailable within
  // milliseconds, and every later one at once: the API is stopping.
  virtual void CancelRefreshes() {}
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_API_CLUSTER_VIEW_H_
