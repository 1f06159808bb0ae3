// Merger keeps this node's store converging with its peers: a bounded pool
// of pull threads (at most `pull_threads`, however many peers there are)
// pulls each peer's changes every `merge_interval_ms` (delta sync with a
// cursor, paged; a full pull when the peer restarted) and merges them into
// the store, which persists them with its next flush. RefreshCounter()
// pulls one counter from every peer at once, for /consistent_value.
//
// Peers are "host:port" addresses. This node's own address is skipped:
// without asking when it obviously names us (our port on a loopback,
// wildcard, bind or host name), or once a peer's reply carries our node id
// and store instance. A peer that shares our challenge id with another node
// id is reported with LOG(ERROR) and a metric; the two stay apart because
// actor ids include the node id. A peer sending our node id from another
// store instance (a copied data directory) is reported and never merged.
//
// Bounds on what a peer sends (each refused counter is left out, counted in
// dist_counter_peer_rejected_counters_total and logged at WARNING, rate
// limited; the cursor still moves past it and the rest of its page merges):
//   - pages of about `page_bytes`; a larger reply is refused whole;
//   - one round of one peer stops after `max_round_bytes` of replies even
//     if the peer says there is more, and resumes an interval later;
//   - a counter state with more than `max_actors_per_counter` actors or
//     more than `max_counter_bytes` encoded, or one whose merge would grow
//     our copy of the counter beyond those bounds, is refused
//     (reason too_many_actors or too_large). Concurrent merges of one
//     counter from several peers may overshoot the bound by a few states;
//   - a counter entry with a bad name (not UTF-8, '/', NUL, too long:
//     reason bad_name), a bad actor id (over 256 bytes, NUL, not UTF-8:
//     bad_actor) or a malformed state (bad_state) is refused alone; only a
//     page whose framing is broken fails whole (the cursor stays);
//   - this node's own actor ids (our challenge id and node id) are taken
//     from a peer only for incarnations below ours: those are how a
//     restarted node gets back what it issued before; the current and any
//     later incarnation (or a malformed one) is dropped from the state
//     (reason own_actor), so a peer can never pre-load our next identity.
//     A peer holding more for our current actor than we do, seen by a
//     pull, first makes the store move to a new incarnation
//     (CounterStore::CheckPeerOwnCount), at most once per the store's
//     min_incarnation_move_interval_s; the old actor's totals then merge if
//     an earlier run of this node used it (a data dir put back from a
//     snapshot), never if this process started it
//     (CounterStore::FirstRefusedIncarnation). A claim the store refuses
//     (a move was just made: the claim is forged) is logged at ERROR per
//     peer, rate limited, and its state of our current actor dropped.
//     A refresh (RefreshCounter) never moves the node: any client can ask
//     for one at will, and a read should not change who this node is. It
//     drops the claim as a pull would and makes that peer due for a pull
//     now; the pull, which sees every change the peer holds after our
//     cursor (the whole state at our start), decides;
//
// Health: a peer that fails backs off (doubling from the merge interval,
// capped at `max_backoff_ms`). A dead or hung peer holds one pull thread
// for at most a peer timeout per attempt, never the others' schedule.
// Failures are logged at WARNING, rate limited. A peer is "connected" if a
// pull or refresh succeeded within the last `connected_rounds` merge
// intervals plus one peer timeout.
//
// Metrics (when options.metrics is set), labelled by peer; a removed
// peer's series are removed with it:
//   dist_counter_merge_rounds_total{peer,result}      pull rounds, ok/error
//   dist_counter_peer_pulled_bytes_total{peer}        reply bytes received
//   dist_counter_peer_pulled_counters_total{peer}     counter states received
//   dist_counter_peer_rejected_replies_total{peer}    invalid replies
//   dist_counter_peer_rejected_counters_total{peer,reason}  refused states
//   dist_counter_peer_up{peer}                        1 if connected
//   dist_counter_peer_last_success_age_seconds{peer}  since the last success
//                                                     (or since added)
//   dist_counter_duplicate_challenge_id_total         peers found sharing
//                                                     our challenge id
//   dist_counter_consistent_refreshes_total{result}   RefreshCounter calls
//
// Thread-safe: every method may be called from any thread. No lock is held
// while waiting on a peer. Locks are util/mutex.h's, checked by clang's
// -Wthread-safety (scripts/check_thread_safety.sh). Lock order: mu_, then
// Shared::mu or a peer's log_mu (declared with ACQUIRED_AFTER(mu_); neither
// is held with the other), then the Metrics lock, a leaf (a peer's series
// are released when the peer is destroyed, possibly under mu_);
// fanouts_mu_ is taken alone.

#ifndef DIST_COUNTER_CLUSTER_MERGER_H_
#define DIST_COUNTER_CLUSTER_MERGER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "proto/wire.h"
#include "util/mutex.h"
#include "util/status.h"
#include "util/thread_annotations.h"

namespace dist_counter {

class CounterFanout;
class CounterStore;
class Metrics;
class PeerClient;
class PeerTransport;
class PnCounter;
struct ActorCounts;
struct PeerClientOptions;

struct MergerOptions {
  int merge_interval_ms = 1000;  // each peer is pulled this often
  int peer_timeout_ms = 500;     // bound on one request to a peer
  int max_backoff_ms = 2000;     // longest wait before retrying a dead peer
  int connected_rounds = 3;      // see "connected" above
  int pull_threads = 8;          // peers pulled at once, at most
  size_t page_limit = 1000;      // counters asked for per request
  size_t page_bytes = kDefaultPageBytes;  // bytes asked for per page
  size_t max_round_bytes = 16 << 20;      // per peer per interval, about
  size_t max_actors_per_counter = 1024;   // see "Bounds" above
  size_t max_counter_bytes = 256 << 10;   // of one encoded counter state
  // This node's listening address, to recognise itself in the peer list.
  std::string bind = "0.0.0.0";
  uint16_t port = 0;           // 0: unknown, only replies identify us
  Metrics* metrics = nullptr;  // not owned; may be null; must outlive us
  // Sent to peers as "Authorization: Bearer <token>" when not empty.
  std::string auth_token;
  // Carries requests to peers (cluster/peer_transport.h); null: HTTP over
  // libcurl. Not owned; must outlive the Merger.
  PeerTransport* transport = nullptr;
  // A monotonic clock in milliseconds for due times, backoff, health and
  // log rate limits; null: std::chrono::steady_clock. The pull threads
  // still wait on the steady clock: set it only when driving pulls with
  // PullOnce() (a simulation). Called from any thread.
  std::function<int64_t()> now_ms;
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

  // Starts pulling every peer in the background, on at most
  // options.pull_threads threads. `port` (if not 0)
  // replaces options.port: the port the node actually listens on.
  // Idempotent; does nothing after Stop().
  void Start(uint16_t port = 0) EXCLUDES(mu_);

  // CancelRefreshes(), then stops and joins the pull threads; a pull in
  // progress is abandoned within a few milliseconds. Idempotent.
  void Stop() EXCLUDES(mu_, fanouts_mu_);

  // Makes every RefreshCounter() in progress return Unavailable within a
  // few milliseconds (whatever peer_timeout_ms is), and every later one at
  // once. For a prompt stop: call it before waiting for the callers of
  // RefreshCounter(). Pulls go on until Stop(). Idempotent.
  void CancelRefreshes() EXCLUDES(fanouts_mu_);

  // Replaces the peer list. Peers that stay keep their cursor and health;
  // a pull of a removed peer in progress is abandoned and waited for here,
  // and its metric series go once no refresh uses the peer any more.
  void SetPeers(const std::vector<std::string>& peers) EXCLUDES(mu_);

  // Pulls peer `address` (as configured) once on the calling thread, as a
  // pull thread would: one round, pages of changes until the peer has no
  // more or the round's byte budget is spent, merged into the store, with
  // the peer's health and next due time updated. For a caller that runs
  // its own schedule (a simulation) instead of Start(). Returns the
  // round's result: OK, or why it failed (Unavailable, Corruption);
  // NotFound if `address` is not a configured peer; OK at once, pulling
  // nothing, if the peer is this node; Busy if a pull thread pulls it now;
  // Unavailable after Stop().
  Status PullOnce(const std::string& address) EXCLUDES(mu_);

  // Fetches counter `name` from every peer (except this node) in parallel,
  // within about peer_timeout_ms, and merges every valid answer into the
  // store. Returns OK if every peer answered; otherwise Unavailable, with
  // each peer that did not (as configured) appended to *unreachable. After
  // CancelRefreshes() (or Stop()): Unavailable, every peer unreachable.
  Status RefreshCounter(const std::string& name,
                        std::vector<std::string>* unreachable)
      EXCLUDES(mu_, fanouts_mu_);

  // The peers (as configured, never this node) connected right now.
  std::vector<std::string> ConnectedNodes() const EXCLUDES(mu_);

  // One entry per configured peer, in configuration order.
  std::vector<PeerStatus> PeerStatuses() const EXCLUDES(mu_);

 private:
  struct Peer;
  struct Shared;

  // A pull thread: runs the peer due first, or waits for one to be due.
  void RunPool() EXCLUDES(mu_);
  // Waits until a peer is due and no other thread pulls it, marks it busy
  // and returns it; returns null once Stop() was called.
  std::shared_ptr<Peer> TakeDuePeer() EXCLUDES(mu_);
  // Pulls `peer` once and returns when it is due again (steady ms); stores
  // the round's result in *result if not null.
  int64_t PullRound(Peer* peer, Status* result = nullptr) EXCLUDES(mu_);
  // Pulls pages of changes after peer->cursor and merges them, until the
  // peer has no more or the round's byte budget is spent.
  Status PullPages(Peer* peer);
  // Checks who answered. Returns OK to merge; sets *self if it is us.
  Status CheckIdentity(Peer* peer, const PeerIdentity& node, bool* self);
  // Merges `peer`'s state of `name` within the bounds, leaving out our own
  // current and later actors, which only this node may raise (their
  // baselines, from a peer's reset, are taken when their totals are within
  // ours). A claim above ours for our current actor moves the store to a
  // new incarnation first if `may_move` (a pull); otherwise (a refresh)
  // makes the peer due for a pull now.
  void MergeState(Peer* peer, const std::string& name, const PnCounter& state,
                  bool may_move);
  // Hands a claim of `counts` for our actor `actor` in `name` to the store
  // (CounterStore::CheckPeerOwnCount); logs a refusal per peer.
  void CheckOwnClaim(Peer* peer, const std::string& name,
                     const std::string& actor, const ActorCounts& counts);
  // Makes `peer` due for a pull now (unless a pull of it runs).
  void PullSoon(Peer* peer) EXCLUDES(mu_);
  // True if `actor` names this node at its current or a later incarnation
  // (or claims our challenge and node id without a valid incarnation).
  bool IsOwnCurrentOrLaterActor(const std::string& actor) const;
  // True if `counts` (a peer's totals of `actor`) are within `local`'s
  // totals of it, so that merging them can raise only its baselines: how a
  // reset made on a peer reaches this node's own actor.
  static bool OnlyRaisesBaselines(const PnCounter& local,
                                  const std::string& actor,
                                  const ActorCounts& counts);
  // Counts and (rate limited) logs counter `name` refused from `peer`.
  void ReportRejected(Peer* peer, const std::string& name,
                      const std::string& reason, const std::string& detail);
  void RecordSuccess(Peer* peer);
  void RecordFailure(Peer* peer, const Status& status);
  // True if `address` obviously names this node (see above).
  bool ObviouslySelf(const std::string& address) const REQUIRES(mu_);
  std::shared_ptr<Peer> NewPeer(const std::string& address) REQUIRES(mu_);
  // Starts pull threads up to min(pull_threads, peers to pull).
  void AddThreadsLocked() REQUIRES(mu_);
  std::unique_ptr<CounterFanout> TakeFanout() EXCLUDES(fanouts_mu_);
  void ReturnFanout(std::unique_ptr<CounterFanout> fanout)
      EXCLUDES(fanouts_mu_);
  PeerClientOptions ClientOptions() const;
  // options_.now_ms(), or the steady clock in milliseconds.
  int64_t Now() const;

  MergerOptions options_;  // fixed at construction; port_ has the port
  CounterStore* const store_;
  std::string hostname_;            // gethostname(), lowercase
  std::shared_ptr<Shared> shared_;  // also held by the metrics collector

  // Guards the fields below and every peer's scheduling fields (due_ms,
  // busy; not annotated: the analysis cannot name another object's lock).
  // With cv_.
  mutable Mutex mu_;
  // Signalled when a peer becomes idle or is added, and at Stop().
  CondVar cv_;
  std::vector<std::shared_ptr<Peer>> peers_ GUARDED_BY(mu_);  // config order
  std::vector<std::thread> threads_ GUARDED_BY(mu_);  // the pull threads
  bool started_ GUARDED_BY(mu_) = false;
  bool stopped_ GUARDED_BY(mu_) = false;  // Stop() was called: no new pull
  // This node's port (options.port, or Start()'s), 0 if unknown.
  uint16_t port_ GUARDED_BY(mu_) = 0;

  // Set once by CancelRefreshes(); every fanout's abort flag.
  std::atomic<bool> refreshes_cancelled_{false};
  Mutex fanouts_mu_;  // taken alone
  // Idle fanouts.
  std::vector<std::unique_ptr<CounterFanout>> fanouts_ GUARDED_BY(fanouts_mu_);
  // Taken by a RefreshCounter.
  std::vector<CounterFanout*> busy_fanouts_ GUARDED_BY(fanouts_mu_);

  // Metrics (null when options.metrics is null).
  std::atomic<uint64_t>* duplicate_metric_ = nullptr;
  std::atomic<uint64_t>* refresh_ok_metric_ = nullptr;
  std::atomic<uint64_t>* refresh_unavailable_metric_ = nullptr;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_CLUSTER_MERGER_H_
