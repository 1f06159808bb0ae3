// MergerView is the HTTP API's view of the cluster (api/cluster_view.h),
// served by the cluster Merger: api/ and cluster/ stay independent of each
// other, and node/ connects them with this adapter.
//
// Thread-safe, as Merger is.

#ifndef DIST_COUNTER_NODE_MERGER_VIEW_H_
#define DIST_COUNTER_NODE_MERGER_VIEW_H_

#include <string>
#include <vector>

#include "api/cluster_view.h"

namespace dist_counter {

class Merger;

class MergerView : public ClusterView {
 public:
  // Does not own `merger`, which must outlive this view.
  explicit MergerView(Merger* merger) : merger_(merger) {}

  Status RefreshCounter(const std::string& name,
                        std::vector<std::string>* unreachable) override;
  std::vector<std::string> ConnectedNodes() const override;
  void PeersChanged(const std::vector<std::string>& peers) override;
  void CancelRefreshes() override;

 private:
  Merger* const merger_;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_NODE_MERGER_VIEW_H_
