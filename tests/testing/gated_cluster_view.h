// GatedClusterView: a ClusterView whose RefreshCounter blocks until the
// test opens the gate, like a peer that does not answer yet. For tests of
// the Api and the HTTP server. Thread-safe.

#ifndef DIST_COUNTER_TESTING_GATED_CLUSTER_VIEW_H_
#define DIST_COUNTER_TESTING_GATED_CLUSTER_VIEW_H_

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "api/cluster_view.h"

namespace dist_counter {
namespace test {

class GatedClusterView : public ClusterView {
 public:
  Status RefreshCounter(const std::string&,
                        std::vector<std::string>*) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
    return Status::OK();
  }
  std::vector<std::string> ConnectedNodes() const override { return {}; }
  void PeersChanged(const std::vector<std::string>&) override {}

  // Returns once `n` refreshes have reached the gate.
  void WaitForWaiters(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return waiting_ >= n; });
  }
  // Lets every refresh, waiting or to come, through.
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int waiting_ = 0;
  bool open_ = false;
};

}  // namespace test
}  // namespace dist_counter

#endif  // DIST_COUNTER_TESTING_GATED_CLUSTER_VIEW_H_
