// PeerResolver keeps a node's peer list equal to a DNS answer (--peers_dns):
// every `interval_ms` it resolves one name to its IPv4 (A record) addresses
// and, when the answer differs from the list last delivered, hands the new
// list to a callback (node/ stores it and gives it to the Merger, which
// knows nothing of DNS). Every address becomes a peer "address:port" with
// the one configured port; the list is sorted, duplicates are dropped and
// it is cut to `max_peers` (the rest logged). This node's own address stays
// in the list: the Merger skips it, as it does for any peer list.
//
// A failed resolution (an error, a timeout, or an answer without any
// address, which a DNS hiccup or a service with no endpoint yet gives)
// changes nothing: the last good list stays in force. Failures are logged
// at WARNING at most once per `failure_log_interval_ms` (with how many were
// not logged); the first success after failures is logged at INFO. A
// change is logged at WARNING once, naming the peers added and removed.
//
// Resolution blocks (getaddrinfo has no timeout of its own), so it runs on
// the resolver's own thread, never on the caller's. Stop() does not wait
// for a resolution in progress: that one ends on its own and its answer is
// dropped. The callback never runs after Stop() returns.
//
// Thread-safe: every method may be called from any thread. The callback
// runs on the resolver thread with no lock of ours held; it may block for
// a while (Stop() waits for a callback in progress) but must not call
// Stop(). Lock order: State::mu is a leaf, never held during a resolution
// or a callback.

#ifndef DIST_COUNTER_CLUSTER_PEER_RESOLVER_H_
#define DIST_COUNTER_CLUSTER_PEER_RESOLVER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "util/status.h"

namespace dist_counter {

class Metrics;

// Resolves `name` to IPv4 addresses in dotted text ("10.0.0.7"), appended
// to *addresses in any order. Returns OK, or a status saying why not (the
// resolver then keeps its last list). Must be callable from any thread;
// may block. A call in progress at Stop() is left to finish after Stop()
// and the resolver's destruction, so a ResolveFunction must own (or
// share) everything it uses.
using ResolveFunction = std::function<Status(
    const std::string& name, std::vector<std::string>* addresses)>;

// Receives a changed peer list ("address:port" entries). Returns OK once the
// list is in force; on failure the resolver delivers the list again next
// round (logged at WARNING, rate limited like resolution failures).
using PeersCallback =
    std::function<Status(const std::vector<std::string>& peers)>;

struct PeerResolverOptions {
  std::string name;        // the DNS name to resolve, e.g. a headless
                           // Kubernetes service
  uint16_t port = 7777;    // every peer's port
  int interval_ms = 1000;  // resolved this often (start to start)
  size_t max_peers = 64;   // longer answers are cut (sorted first)
  int failure_log_interval_ms = 60000;  // at most one failure log per this
  // Not owned; may be null; must outlive the resolver. Gets
  //   dist_counter_peers_dns_resolutions_total{result="ok"|"error"}
  //   dist_counter_peers_dns_peers   peers in the list in force
  Metrics* metrics = nullptr;
};

// What a resolver has done so far, for tests and debugging.
struct PeerResolverStats {
  uint64_t resolutions = 0;   // finished resolutions, good or failed
  uint64_t failures = 0;      // failed resolutions (and empty answers)
  uint64_t failure_logs = 0;  // WARNING lines written about failures
  uint64_t changes = 0;       // lists delivered to the callback with OK
};

class PeerResolver {
 public:
  // Resolves with `resolve` and delivers changes to `on_change`; both are
  // kept until the resolver thread ends, which may be after Stop() (see
  // ResolveFunction); `on_change` is never called after Stop(). No thread
  // runs before Start().
  PeerResolver(const PeerResolverOptions& options, ResolveFunction resolve,
               PeersCallback on_change);
  PeerResolver(const PeerResolver&) = delete;
  PeerResolver& operator=(const PeerResolver&) = delete;

  // Calls Stop().
  ~PeerResolver();

  // Starts resolving at once, then every interval. `current` is the peer
  // list in force now (e.g. the stored one): an answer equal to it is not
  // delivered. Idempotent; does nothing after Stop().
  void Start(const std::vector<std::string>& current);

  // Ends the resolver: waits for a callback in progress, never for a
  // resolution (whose thread is left to finish alone and deliver nothing).
  // Idempotent.
  void Stop();

  // The list last delivered (or given to Start()).
  std::vector<std::string> Peers() const;

  PeerResolverStats Stats() const;

 private:
  struct State;

  std::shared_ptr<State> state_;  // shared with the resolver thread
  std::thread thread_;            // joined or detached by Stop()
};

// Builds the peer list of a DNS answer: "address:port" for each address,
// sorted, without duplicates, at most `max_peers` of them (the number left
// out goes to *dropped when not null). Pure.
std::vector<std::string> PeersFromAddresses(
    const std::vector<std::string>& addresses, uint16_t port, size_t max_peers,
    size_t* dropped = nullptr);

// Resolves `name` with the system resolver (getaddrinfo, IPv4 only: the
// hosts file, /etc/resolv.conf with its search domains and timeouts).
Status ResolveWithSystem(const std::string& name,
                         std::vector<std::string>* addresses);

// A ResolveFunction asking only the DNS server at `server` ("ip:port",
// IPv4) for A records of the name as given (no search domains, no hosts
// file), over UDP with the C library's resolver (res_nquery), waiting about
// `timeout_ms` (whole seconds, at least one) for one attempt. For tests and
// setups where /etc/resolv.conf is not the right server. Returns
// InvalidArgument if `server` is not an IPv4 address with a port.
Status MakeServerResolver(std::string_view server, int timeout_ms,
                          ResolveFunction* resolve);

}  // namespace dist_counter

#endif  // DIST_COUNTER_CLUSTER_PEER_RESOLVER_H_
