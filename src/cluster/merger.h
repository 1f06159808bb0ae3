// Merger keeps this node's store converging with its peers (SPEC §1, §3):
// a background worker per peer pulls the peer's changes every
// `merge_interval_ms` (delta sync with a cursor, paged; a full pull when the
// peer restarted) and merges them into the store, which persists them with
// its next flush. RefreshCounter() pulls one counter from every peer at
// once, for /consistent_value.
//
// Peers are "host:port" addresses. This node's own address is skipped:
// without asking when it obviously names us (our port on a loopback,
// wildcard, bind or host name), or once a peer's reply carries our node id
// and store instance. A peer that shares our challenge id with another node
// id is reported with LOG(ERROR) and a metric; the two stay apart because
// actor ids include the node id. A peer sending our node id from another
// store instance (a copied data directory) is reported and never merged.
//
// Health: a worker that fails backs off (doubling from the merge interval,
// capped at `max_backoff_ms`); workers are independent, so a dead or hung
// peer never delays the others. Failures are logged at WARNING, rate
// limited. A peer is "connected" if a pull or refresh succeeded within the
// last `connected_rounds` merge intervals plus one peer timeout.
//
// Metrics (when options.metrics is set), labelled by peer:
//   dist_counter_merge_rounds_total{peer,result}      pull rounds, ok/error
//   dist_counter_peer_pulled_bytes_total{peer}        reply bytes received
//   dist_counter_peer_pulled_counters_total{peer}     counter states received
//   dist_counter_peer_rejected_replies_total{peer}    invalid replies
//   dist_counter_peer_up{peer}                        1 if connected
//   dist_counter_peer_last_success_age_seconds{peer}  since the last success
//                                                     (or since added)
//   dist_counter_duplicate_challenge_id_total         peers found sharing
//                                                     our challenge id
//   dist_counter_consistent_refreshes_total{result}   RefreshCounter calls
//
// Thread-safe: every method may be called from any thread. No lock is held
// while waiting on a peer.

#ifndef DIST_COUNTER_CLUSTER_MERGER_H_
#define DIST_COUNTER_CLUSTER_MERGER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "util/status.h"

namespace dist_counter {

class CounterFanout;
class CounterStore;
class Metrics;
class PeerClient;
class PnCounter;
struct ChangesCursor;
struct PeerIdentity;

struct MergerOptions {
  int merge_interval_ms = 1000;  // each peer is pulled this often
  int peer_timeout_ms = 500;     // bound on one request to a peer
  int max_backoff_ms = 2000;     // longest wait before retrying a dead peer
  int connected_rounds = 3;      // see "connected" above
  size_t page_limit = 1000;      // counters asked for per request
  size_t max_reply_bytes = 64 << 20;  // larger peer replies are rejected
  // This node's listening address, to recognise itself in the peer list.
  std::string bind = "0.0.0.0";
  uint16_t port = 0;           // 0: unknown, only replies identify us
  Metrics* metrics = nullptr;  // not owned; may be null; must outlive us
};

// What the merger knows about one peer, for tests and debugging.
struct PeerStatus {
  std::string address;     // as configured
  bool self = false;       // recognised as this node, skipped
  bool connected = false;  // answered recently
  int failures = 0;        // consecutive failed pulls
  uint64_t rounds = 0;     // successful pull rounds
  std::string last_error;  // of the last failed pull, or ""
};

class Merger {
 public:
  // Does not own `store`, which must outlive the Merger. Takes the peer
  // list from store->Peers(). No worker runs before Start().
  Merger(const MergerOptions& options, CounterStore* store);
  Merger(const Merger&) = delete;
  Merger& operator=(const Merger&) = delete;

  // Calls Stop().
  ~Merger();

  // Starts pulling every peer in the background. `port` (if not 0)
  // replaces options.port: the port the node actually listens on.
  // Idempotent; does nothing after Stop().
  void Start(uint16_t port = 0);

  // Stops and joins every worker; a pull in progress is abandoned within
  // a few milliseconds. RefreshCounter() keeps working. Idempotent.
  void Stop();

  // Replaces the peer list. Workers of peers that stay keep their cursor
  // and health; removed peers' workers are stopped and joined here.
  void SetPeers(const std::vector<std::string>& peers);

  // Fetches counter `name` from every peer (except this node) in parallel,
  // within about peer_timeout_ms, and merges every valid answer into the
  // store. Returns OK if every peer answered; otherwise Unavailable, with
  // each peer that did not (as configured) appended to *unreachable.
  Status RefreshCounter(const std::string& name,
                        std::vector<std::string>* unreachable);

  // The peers (as configured, never this node) connected right now.
  std::vector<std::string> ConnectedNodes() const;

  // One entry per configured peer, in configuration order.
  std::vector<PeerStatus> PeerStatuses() const;

 private:
  struct Peer;
  struct Shared;

  // The worker of one peer: pulls, then waits an interval or a backoff.
  void Run(Peer* peer);
  // Pulls every page of changes `peer` has after *cursor and merges them.
  Status PullOnce(Peer* peer, PeerClient* client, ChangesCursor* cursor);
  // Checks who answered. Returns OK to merge; sets *self if it is us.
  Status CheckIdentity(Peer* peer, const PeerIdentity& node, bool* self);
  // Merges a peer's state of `name`, leaving out our own current actor,
  // which only this node may raise.
  void MergeState(const std::string& name, const PnCounter& state);
  void RecordSuccess(Peer* peer);
  void RecordFailure(Peer* peer, const Status& status);
  bool ObviouslySelf(const std::string& address) const;
  std::shared_ptr<Peer> NewPeer(const std::string& address);
  void StartWorker(const std::shared_ptr<Peer>& peer);
  static void StopWorkers(std::vector<std::shared_ptr<Peer>>* peers);
  std::unique_ptr<CounterFanout> TakeFanout();
  void ReturnFanout(std::unique_ptr<CounterFanout> fanout);

  MergerOptions options_;
  CounterStore* const store_;
  std::string hostname_;            // gethostname(), lowercase
  std::shared_ptr<Shared> shared_;  // also held by the metrics collector

  mutable std::mutex mu_;  // guards peers_, started_, stopped_, options_.port
  std::vector<std::shared_ptr<Peer>> peers_;  // configuration order
  bool started_ = false;
  bool stopped_ = false;  // Stop() was called: no worker starts again

  std::mutex fanouts_mu_;                                // guards fanouts_
  std::vector<std::unique_ptr<CounterFanout>> fanouts_;  // idle ones

  // Metrics (null when options.metrics is null).
  std::atomic<uint64_t>* duplicate_metric_ = nullptr;
  std::atomic<uint64_t>* refresh_ok_metric_ = nullptr;
  std::atomic<uint64_t>* refresh_unavailable_metric_ = nullptr;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_CLUSTER_MERGER_H_
