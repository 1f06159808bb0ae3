// SimNetwork is the simulated network between the nodes of one simulation:
// each node's merger gets a PeerTransport from NewTransport() that hands a
// request to the addressed node's real Api (api/routes.h) in the same
// process, on the calling thread, and returns its reply or a failure.
//
// Faults, each chosen by the simulation's SimRandom while faults are on:
//   - a link can be cut one way (from -> to); a request needs both ways;
//   - a node that is down or paused (Lookup returns null) never answers;
//   - a request can be lost before the peer sees it, or its reply after
//     the peer served it;
//   - a reply can arrive late: the requester gets the reply the peer gave
//     earlier to the same request (its state as it was then), which also
//     models a duplicated delivery.
// Every delivery and fault is appended to the trace.
//
// Not thread-safe; the simulator runs on one thread.

#ifndef DIST_COUNTER_TESTS_SIM_SIM_NETWORK_H_
#define DIST_COUNTER_TESTS_SIM_SIM_NETWORK_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cluster/peer_transport.h"

namespace dist_counter {

class Api;
class SimRandom;

struct SimNetworkOptions {
  int drop_request_percent = 3;  // lost before the peer sees it
  int drop_reply_percent = 3;    // lost after the peer served it
  int late_reply_percent = 5;    // an earlier reply to the same request
};

class SimNetwork {
 public:
  // Finds the Api answering at node `index`, or null if it is down or
  // paused.
  using Lookup = std::function<Api*(int index)>;

  // Does not own `random` or `trace`, which must outlive the network.
  // `addresses[i]` is node i's address.
  SimNetwork(const SimNetworkOptions& options,
             const std::vector<std::string>& addresses, Lookup lookup,
             SimRandom* random, std::vector<std::string>* trace);

  // A transport for node `from`'s requests; must not outlive the network.
  std::unique_ptr<PeerTransport> NewTransport(int from);

  // Cuts (or restores) the link from -> to.
  void SetCut(int from, int to, bool cut);
  bool IsCut(int from, int to) const;
  // Restores every link and turns the random faults off (heal) or back on.
  void HealAll();
  void SetFaults(bool on) { faults_ = on; }

  // Delivers node `from`'s request for `target` to the node at `address`.
  Status Deliver(int from, const std::string& address,
                 const std::string& target, PeerReply* reply);

 private:
  const SimNetworkOptions options_;
  const std::vector<std::string> addresses_;
  const Lookup lookup_;
  SimRandom* const random_;
  std::vector<std::string>* const trace_;
  bool faults_ = true;
  std::set<std::pair<int, int>> cuts_;  // (from, to)
  // The last request (target) and its reply on each link (from, to), for
  // late replies: a retry after a lost reply asks the same target.
  std::map<std::pair<int, int>, std::pair<std::string, PeerReply>> replies_;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_TESTS_SIM_SIM_NETWORK_H_
