// NetnsCluster runs N real dist_counter nodes, each in its own network
// namespace, wired to one bridge the way machines hang off a switch, so a
// test can break the network between them for real: cut links both ways
// or one way (iptables), lose or delay packets (iptables, tc), and pause,
// kill -9 and restart nodes (node(i).Pause(), Resume(), Kill9(),
// StartAndWait(): a NodeProcess that runs its child in node i's namespace).
//
//   namespace <prefix>-sw:  bridge br0 with ports n0..n<N-1> and cl
//   namespace <prefix>-n<i>: eth0 = 10.213.0.<i+1>/24, node i on :7777
//   namespace <prefix>-cl:  eth0 = 10.213.0.100/24, the test's clients
//
// Every address exists only inside these namespaces; nothing is added to
// the namespace the test runs in. <prefix> is "dcnet<pid>-<k>" (k counts
// the clusters of one process); Create() first removes namespaces that a
// dead test process left behind ("dcnet<pid>-..." with no such pid), and
// the destructor kills the nodes and removes this cluster's namespaces,
// which takes their links and rules with them.
//
// The test reaches the nodes from the client namespace: a thread that
// called EnterNetns(client_netns()) (testing/netns.h) can use any HTTP
// client on Url(); Request() does that for a single request.
//
// Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN), `ip` and `tc` (iproute2)
// and `iptables`: MissingPrerequisites() says what is missing. Delay needs
// the kernel's netem queueing discipline (sch_netem), which some kernels
// lack: see netem_available() and Throttle().
//
// Not thread-safe, except Request() and the const accessors (size(),
// client_netns(), node_netns(), Address(), Url()), which may be called
// from any thread once Create() returned: create it, start its nodes and
// inject its faults from one thread. That thread should live as long as
// the cluster: a node process is killed when the thread that started it
// exits (PR_SET_PDEATHSIG in NodeProcess).

#ifndef DIST_COUNTER_TESTS_TESTING_NETNS_CLUSTER_H_
#define DIST_COUNTER_TESTS_TESTING_NETNS_CLUSTER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "testing/http_client.h"
#include "testing/node_process.h"

namespace dist_counter {
namespace test {

struct NetnsClusterOptions {
  int nodes = 3;         // at most 99 (the client is host 100)
  uint16_t port = 7777;  // every node listens on it, in its own namespace
  // Extra flags for every node (each also gets --challenge_id=<i+1> and
  // --actors=<every node's address>).
  std::vector<std::string> flags;
};

class NetnsCluster {
 public:
  // "" if this process can build the namespaces. Otherwise a sentence
  // saying what is missing and how to get it, for GTEST_SKIP(). Makes and
  // removes a probe namespace with a bridge, a veth pair, an iptables rule
  // and a tbf queueing discipline.
  static std::string MissingPrerequisites();

  explicit NetnsCluster(const NetnsClusterOptions& options);
  NetnsCluster(const NetnsCluster&) = delete;
  NetnsCluster& operator=(const NetnsCluster&) = delete;
  // Kills every node (SIGKILL) and removes the namespaces.
  ~NetnsCluster();

  // Builds the namespaces, links and addresses. Returns false (see error())
  // if a command failed; the destructor still cleans up.
  bool Create();

  // Starts every node and waits until each answers /ping. Returns false
  // (see error()) if one does not.
  bool StartAll(int timeout_ms = 30000);

  // Stops every running node cleanly (SIGTERM, after SIGCONT). Returns
  // false (see error()) if one did not exit 0, or if a node's log holds a
  // sanitizer report or a failed CHECK, from this run or an earlier one
  // that ended in kill -9.
  bool StopAll(int timeout_ms = 30000);

  int size() const { return static_cast<int>(nodes_.size()); }
  NodeProcess& node(int i) { return *nodes_[i]; }
  const std::string& client_netns() const { return client_ns_; }
  // Node i's namespace, e.g. to check from inside it what it can reach.
  std::string node_netns(int i) const;
  // "10.213.0.<i+1>:<port>": node i's address, as its peers know it.
  std::string Address(int i) const;
  // "http://" + Address(i) + path.
  std::string Url(int i, const std::string& path) const;

  // One request from the client namespace (on a thread of its own). A
  // failure to enter the namespace shows in HttpResponse::error.
  HttpResponse Request(const std::string& method, const std::string& url,
                       const std::string& body = "", int timeout_ms = 5000);

  // ---- Faults. Each returns false (see error()) if a command failed.
  // No packet passes between nodes a and b, either way.
  bool CutTwoWay(int a, int b);
  // Packets from node `from` never reach node `to`; `to` still reaches
  // `from` (TCP then fails both ways, but only after the first SYN).
  bool CutOneWay(int from, int to);
  // Node i drops `percent` % of the packets it sends on its link, chosen at
  // random (iptables' statistic match; needs no netem).
  bool Loss(int i, int percent);
  // Every packet node i sends on its link waits `delay_ms` (tc netem).
  // Fails when !netem_available().
  bool Delay(int i, int delay_ms);
  // Node i's link sends at most `kbit` kbit/s, queueing up to 500 ms
  // (tc tbf): a slow link, for kernels without netem.
  bool Throttle(int i, int kbit);
  // Removes every rule and queueing discipline of every node's namespace.
  bool HealNetwork();

  // Whether the kernel has sch_netem (known after Create()).
  bool netem_available() const { return netem_available_; }

  // The reason for the last failure, with the command and its output.
  const std::string& error() const { return error_; }
  // Every node's log, last `bytes_each` bytes of each, for failure output.
  std::string LogTails(size_t bytes_each = 4000) const;

 private:
  // Runs `argv` in namespace `netns` ("" for ours). On failure sets error_
  // and returns false.
  bool Run(const std::string& netns, const std::vector<std::string>& argv);
  // iptables -w `args` in node i's namespace.
  bool Iptables(int i, const std::vector<std::string>& args);
  // Replaces the root queueing discipline of node i's eth0 with `qdisc`.
  bool SetQdisc(int i, const std::vector<std::string>& qdisc);
  std::string Ip(int i) const;  // "10.213.0.<i+1>"

  const NetnsClusterOptions options_;
  const std::string prefix_;  // "dcnet<pid>-<k>"
  const std::string switch_ns_;
  const std::string client_ns_;
  TempDir dir_;
  std::vector<std::string> made_;  // namespaces created, to remove
  std::vector<bool> has_qdisc_;    // node i's eth0 has a root qdisc of ours
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
  bool netem_available_ = false;
  std::string error_;
};

}  // namespace test
}  // namespace dist_counter

#endif  // DIST_COUNTER_TESTS_TESTING_NETNS_CLUSTER_H_
