#include "node/merger_view.h"

#include "cluster/merger.h"

namespace dist_counter {

Status MergerView::RefreshCounter(const std::string& name,
                                  std::vector<std::string>* unreachable) {
  return merger_->RefreshCounter(name, unreachable);
}

std::vector<std::string> MergerView::ConnectedNodes() const {
  return merger_->ConnectedNodes();
}

void MergerView::CancelRefreshes() { merger_->CancelRefreshes(); }

void MergerView::PeersChanged(const std::vector<std::string>& peers) {
  merger_->SetPeers(peers);
}

}  // namespace dist_counter
