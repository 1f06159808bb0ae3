#include "cluster/merger.h"

#include <glog/logging.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <functional>
#include <thread>
#include <utility>

#include "cluster/peer_client.h"
#include "crdt/actor_id.h"
#include "crdt/pn_counter.h"
#include "store/codec.h"
#include "store/counter_store.h"
#include "util/decimal.h"
#include "util/metrics.h"
#include "util/peer_address.h"

namespace dist_counter {

namespace {

// How often a peer's repeated failures are logged.
constexpr int64_t kLogEveryMs = 10000;
// How often an identity conflict is logged.
constexpr int64_t kConflictLogEveryMs = 30000;
// Why a counter from a peer is refused, as metric labels.
constexpr const char* kRejectReasons[] = {"too_many_actors", "too_large",
                                          "own_actor",       "bad_name",
                                          "bad_actor",       "bad_state"};

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Lowercase(std::string text) {
  for (char& c : text)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// "host:port" with a lowercase host, so "Node1" and "node1:7777" match.
std::string PeerKey(const std::string& address) {
  PeerAddress parsed;
  if (!ParsePeerAddress(address, &parsed).ok()) return address;
  parsed.host = Lowercase(parsed.host);
  return parsed.ToString();
}

// True (and *last_ms moved to `now`) if a log line is due.
bool LogDue(int64_t now, int64_t* last_ms, int64_t every_ms) {
  if (*last_ms != INT64_MIN && now - *last_ms < every_ms) return false;
  *last_ms = now;
  return true;
}

}  // namespace

struct Merger::Peer {
  ~Peer() {
    for (const auto& [name, labels] : series) metrics->Release(name, labels);
  }

  std::string address;  // as configured
  std::string key;      // PeerKey(address)

  // Scheduling, guarded by Merger::mu_.
  int64_t due_ms = 0;  // next pull (steady ms)
  bool busy = false;   // a pull thread is pulling it

  // Used only by the pull thread that has the peer busy.
  std::unique_ptr<PeerClient> client;  // made at the first pull
  ChangesCursor cursor;

  std::atomic<bool> abort{false};  // stop or removal: abandons a transfer

  // Health, read without locks by other threads.
  std::atomic<bool> obviously_self{false};  // our address: never asked
  std::atomic<bool> self{false};            // answered with our identity
  std::atomic<int64_t> added_ms{0};
  std::atomic<int64_t> last_success_ms{-1};  // -1: never
  std::atomic<int> failures{0};
  std::atomic<uint64_t> rounds{0};

  Mutex log_mu ACQUIRED_AFTER(Merger::mu_);  // guards the fields below
  std::string last_error GUARDED_BY(log_mu);
  int64_t last_failure_log_ms GUARDED_BY(log_mu) = INT64_MIN;
  int64_t last_recovery_log_ms GUARDED_BY(log_mu) = INT64_MIN;
  int64_t last_conflict_log_ms GUARDED_BY(log_mu) = INT64_MIN;
  int64_t last_reject_log_ms GUARDED_BY(log_mu) = INT64_MIN;
  int64_t last_forged_log_ms GUARDED_BY(log_mu) = INT64_MIN;
  // Claims for our current actor the store refused, not logged yet.
  uint64_t forged_unlogged GUARDED_BY(log_mu) = 0;
  // Refused counters not logged yet.
  uint64_t rejects_unlogged GUARDED_BY(log_mu) = 0;
  // Node id last reported as a duplicate.
  std::string duplicate_node_id GUARDED_BY(log_mu);

  // Metrics; null without a Metrics object. Released by the destructor.
  Metrics* metrics = nullptr;
  std::vector<std::pair<std::string, std::string>> series;  // name, labels
  std::atomic<uint64_t>* rounds_ok_metric = nullptr;
  std::atomic<uint64_t>* rounds_error_metric = nullptr;
  std::atomic<uint64_t>* bytes_metric = nullptr;
  std::atomic<uint64_t>* counters_metric = nullptr;
  std::atomic<uint64_t>* rejected_metric = nullptr;
  std::map<std::string, std::atomic<uint64_t>*> rejected_counters_metrics;
  std::atomic<int64_t>* up_metric = nullptr;
  std::atomic<int64_t>* age_metric = nullptr;

  bool skipped() const { return obviously_self.load() || self.load(); }

  bool Connected(int64_t now, int64_t window_ms) const {
    const int64_t last = last_success_ms.load();
    return !skipped() && last >= 0 && now - last <= window_ms;
  }

  std::atomic<uint64_t>* CounterSeries(const std::string& name,
                                       const std::string& labels) {
    series.emplace_back(name, labels);
    return metrics->Counter(name, labels);
  }
  std::atomic<int64_t>* GaugeSeries(const std::string& name,
                                    const std::string& labels) {
    series.emplace_back(name, labels);
    return metrics->Gauge(name, labels);
  }
};

// What the metrics collector reads; it may outlive the Merger.
struct Merger::Shared {
  Mutex mu ACQUIRED_AFTER(Merger::mu_);
  std::vector<std::shared_ptr<Peer>> peers GUARDED_BY(mu);
  int64_t connected_window_ms = 0;  // fixed at construction
  std::function<int64_t()> now_ms;  // options.now_ms; fixed at construction

  int64_t Now() const { return now_ms ? now_ms() : SteadyNowMs(); }

  // Refreshes the peers' up and age gauges (the metrics collector).
  void Collect() EXCLUDES(mu) {
    MutexLock lock(&mu);
    const int64_t now = Now();
    for (const auto& peer : peers) {
      if (peer->skipped()) continue;
      MetricSet(peer->up_metric,
                peer->Connected(now, connected_window_ms) ? 1 : 0);
      const int64_t last = peer->last_success_ms.load();
      MetricSet(peer->age_metric,
                now - (last >= 0 ? last : peer->added_ms.load()));
    }
  }
};

Merger::Merger(const MergerOptions& options, CounterStore* store)
    : options_(options),
      store_(store),
      shared_(std::make_shared<Shared>()),
      port_(options.port) {
  options_.merge_interval_ms = std::max(1, options_.merge_interval_ms);
  options_.peer_timeout_ms = std::max(1, options_.peer_timeout_ms);
  options_.max_backoff_ms =
      std::max(options_.merge_interval_ms, options_.max_backoff_ms);
  options_.page_limit = std::max<size_t>(1, options_.page_limit);
  options_.pull_threads = std::max(1, options_.pull_threads);
  options_.page_bytes = std::max<size_t>(1, options_.page_bytes);
  shared_->now_ms = options_.now_ms;
  shared_->connected_window_ms =
      static_cast<int64_t>(std::max(1, options_.connected_rounds)) *
          options_.merge_interval_ms +
      options_.peer_timeout_ms;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0) hostname_ = Lowercase(host);

  Metrics* m = options_.metrics;
  if (m != nullptr) {
    m->Describe("dist_counter_merge_rounds_total", "counter",
                "Rounds of pulling a peer's changes, by result.");
    m->Describe("dist_counter_peer_pulled_bytes_total", "counter",
                "Bytes of peer replies received by the merger.");
    m->Describe("dist_counter_peer_pulled_counters_total", "counter",
                "Counter states received from a peer by the merger.");
    m->Describe("dist_counter_peer_rejected_replies_total", "counter",
                "Peer replies rejected as invalid (never merged).");
    m->Describe("dist_counter_peer_rejected_counters_total", "counter",
                "Counter states from a peer refused (never merged), by "
                "reason: too_many_actors, too_large, own_actor, bad_name, "
                "bad_actor, bad_state.");
    m->Describe("dist_counter_peer_up", "gauge",
                "1 if the peer answered within the last few merge intervals.");
    m->Describe("dist_counter_peer_last_success_age_seconds", "gauge",
                "Time since the last successful pull from the peer (or "
                "since it was configured).",
                1e-3);
    m->Describe("dist_counter_duplicate_challenge_id_total", "counter",
                "Peers found running with this node's challenge id.");
    m->Describe("dist_counter_consistent_refreshes_total", "counter",
                "Counter refreshes from every peer (consistent_value).");
    duplicate_metric_ = m->Counter("dist_counter_duplicate_challenge_id_total");
    refresh_ok_metric_ =
        m->Counter("dist_counter_consistent_refreshes_total", "result=\"ok\"");
    refresh_unavailable_metric_ = m->Counter(
        "dist_counter_consistent_refreshes_total", "result=\"unavailable\"");
    std::shared_ptr<Shared> shared = shared_;
    m->AddCollector([shared] { shared->Collect(); });
  }
  SetPeers(store_->Peers());
}

Merger::~Merger() {
  Stop();
  MutexLock lock(&shared_->mu);
  shared_->peers.clear();
}

int64_t Merger::Now() const { return shared_->Now(); }

std::shared_ptr<Merger::Peer> Merger::NewPeer(const std::string& address) {
  auto peer = std::make_shared<Peer>();
  peer->address = address;
  peer->key = PeerKey(address);
  peer->added_ms = Now();
  peer->obviously_self = ObviouslySelf(address);
  peer->due_ms = Now();
  Metrics* m = options_.metrics;
  if (m != nullptr && !peer->obviously_self) {
    peer->metrics = m;
    const std::string label = "peer=\"" + EscapeLabelValue(address) + "\"";
    peer->rounds_ok_metric = peer->CounterSeries(
        "dist_counter_merge_rounds_total", label + ",result=\"ok\"");
    peer->rounds_error_metric = peer->CounterSeries(
        "dist_counter_merge_rounds_total", label + ",result=\"error\"");
    peer->bytes_metric =
        peer->CounterSeries("dist_counter_peer_pulled_bytes_total", label);
    peer->counters_metric =
        peer->CounterSeries("dist_counter_peer_pulled_counters_total", label);
    peer->rejected_metric =
        peer->CounterSeries("dist_counter_peer_rejected_replies_total", label);
    for (const char* reason : kRejectReasons) {
      peer->rejected_counters_metrics[reason] =
          peer->CounterSeries("dist_counter_peer_rejected_counters_total",
                              label + ",reason=\"" + reason + "\"");
    }
    peer->up_metric = peer->GaugeSeries("dist_counter_peer_up", label);
    peer->age_metric =
        peer->GaugeSeries("dist_counter_peer_last_success_age_seconds", label);
  }
  return peer;
}

bool Merger::ObviouslySelf(const std::string& address) const {
  PeerAddress parsed;
  if (port_ == 0 || !ParsePeerAddress(address, &parsed).ok() ||
      parsed.port != port_) {
    return false;
  }
  const std::string host = Lowercase(parsed.host);
  const std::string bind = Lowercase(options_.bind);
  const bool wildcard = bind.empty() || bind == "0.0.0.0" || bind == "::";
  const bool loopback_bind = bind == "127.0.0.1" || bind == "localhost";
  if (host == bind) return true;
  if (host == "localhost" || host == "127.0.0.1" || host == "0.0.0.0") {
    return wildcard || loopback_bind;
  }
  // With a wildcard bind we hold the port on every local address.
  if (wildcard && host.rfind("127.", 0) == 0) return true;
  return wildcard && !hostname_.empty() && host == hostname_;
}

void Merger::Start(uint16_t port) {
  MutexLock lock(&mu_);
  if (started_ || stopped_) return;
  started_ = true;
  if (port != 0) port_ = port;
  for (const auto& peer : peers_) {
    peer->obviously_self = ObviouslySelf(peer->address);
    if (peer->obviously_self) {
      LOG(INFO) << "peer " << peer->address << " is this node; skipping it";
    }
  }
  AddThreadsLocked();
}

void Merger::AddThreadsLocked() {
  if (!started_ || stopped_) return;
  size_t wanted = 0;
  for (const auto& peer : peers_) {
    if (!peer->obviously_self) ++wanted;
  }
  wanted = std::min(wanted, static_cast<size_t>(options_.pull_threads));
  while (threads_.size() < wanted) {
    threads_.emplace_back([this] { RunPool(); });
  }
}

void Merger::CancelRefreshes() {
  refreshes_cancelled_ = true;
  // A fanout taken after this sees the flag before its first poll.
  MutexLock lock(&fanouts_mu_);
  for (CounterFanout* fanout : busy_fanouts_) fanout->Wakeup();
}

void Merger::Stop() {
  CancelRefreshes();
  std::vector<std::thread> threads;
  std::vector<std::shared_ptr<Peer>> peers;
  {
    MutexLock lock(&mu_);
    stopped_ = true;
    threads.swap(threads_);
    peers = peers_;
    for (const auto& peer : peers) peer->abort = true;
  }
  cv_.SignalAll();
  for (std::thread& thread : threads) thread.join();
  for (const auto& peer : peers) MetricSet(peer->up_metric, 0);
}

void Merger::SetPeers(const std::vector<std::string>& peers) {
  std::vector<std::shared_ptr<Peer>> removed;
  {
    MutexLock lock(&mu_);
    std::vector<std::shared_ptr<Peer>> next;
    for (const std::string& address : peers) {
      if (!ValidatePeerAddress(address).ok()) {
        LOG(WARNING) << "ignoring invalid peer address \"" << address << "\"";
        continue;
      }
      const std::string key = PeerKey(address);
      bool listed = false;
      for (const auto& p : next) listed = listed || p->key == key;
      if (listed) continue;  // the same peer twice
      std::shared_ptr<Peer> peer;
      for (const auto& old : peers_) {
        if (old->address == address) peer = old;
      }
      if (!peer) peer = NewPeer(address);
      next.push_back(std::move(peer));
    }
    for (const auto& old : peers_) {
      if (std::find(next.begin(), next.end(), old) == next.end()) {
        old->abort = true;
        removed.push_back(old);
      }
    }
    peers_ = std::move(next);
    {
      MutexLock shared_lock(&shared_->mu);
      shared_->peers = peers_;
    }
    AddThreadsLocked();
    cv_.SignalAll();
    // A pull of a removed peer in progress ends within milliseconds.
    for (;;) {
      bool busy = false;
      for (const auto& peer : removed) busy = busy || peer->busy;
      if (!busy) break;
      cv_.Wait(&mu_);
    }
  }
  // `removed` goes here, with its metric series unless a refresh still
  // holds one of them.
}

void Merger::RunPool() {
  for (;;) {
    std::shared_ptr<Peer> next = TakeDuePeer();
    if (!next) return;
    const int64_t next_due = PullRound(next.get());
    MutexLock lock(&mu_);
    next->due_ms = next_due;
    next->busy = false;
    // Dropped under mu_, so that a SetPeers() waiting for this pull holds
    // the last reference of a removed peer (and releases its series).
    next.reset();
    cv_.SignalAll();
  }
}

std::shared_ptr<Merger::Peer> Merger::TakeDuePeer() {
  MutexLock lock(&mu_);
  for (;;) {
    if (stopped_) return nullptr;
    // Chosen by index: a waiting thread must hold no peer, whose removal
    // would then keep its metric series.
    size_t chosen = peers_.size();
    for (size_t i = 0; i < peers_.size(); ++i) {
      const Peer& peer = *peers_[i];
      if (peer.busy || peer.skipped()) continue;
      if (chosen == peers_.size() || peer.due_ms < peers_[chosen]->due_ms) {
        chosen = i;
      }
    }
    const int64_t now = Now();
    if (chosen == peers_.size()) {
      cv_.Wait(&mu_);
      continue;
    }
    const int64_t due = peers_[chosen]->due_ms;
    if (due > now) {
      cv_.WaitFor(&mu_, std::chrono::milliseconds(due - now));
      continue;
    }
    std::shared_ptr<Peer> next = peers_[chosen];
    next->busy = true;
    return next;
  }
}

PeerClientOptions Merger::ClientOptions() const {
  PeerClientOptions client_options;
  client_options.connect_timeout_ms = options_.peer_timeout_ms;
  client_options.timeout_ms = options_.peer_timeout_ms;
  client_options.page_bytes = options_.page_bytes;
  client_options.max_reply_bytes = 2 * options_.page_bytes + kReplySlackBytes;
  client_options.limits.max_actors_per_counter =
      options_.max_actors_per_counter;
  client_options.limits.max_counter_bytes = options_.max_counter_bytes;
  client_options.auth_token = options_.auth_token;
  client_options.transport = options_.transport;
  return client_options;
}

Status Merger::PullOnce(const std::string& address) {
  std::shared_ptr<Peer> peer;
  {
    MutexLock lock(&mu_);
    if (stopped_) return Status::Unavailable("stopping");
    for (const auto& p : peers_) {
      if (p->address == address) peer = p;
    }
    if (!peer) return Status::NotFound(address + " is not a peer");
    if (peer->skipped()) return Status::OK();
    if (peer->busy) return Status::Busy(address + " is being pulled");
    peer->busy = true;
  }
  Status result;
  const int64_t next_due = PullRound(peer.get(), &result);
  MutexLock lock(&mu_);
  peer->due_ms = next_due;
  peer->busy = false;
  peer.reset();  // under mu_, as in RunPool()
  cv_.SignalAll();
  return result;
}

int64_t Merger::PullRound(Peer* peer, Status* result) {
  if (!peer->client) {
    PeerClientOptions client_options = ClientOptions();
    client_options.abort = &peer->abort;
    peer->client = std::make_unique<PeerClient>(peer->address, client_options);
  }
  const int64_t start = Now();
  const uint64_t bytes_before = peer->client->bytes_received();
  Status s = PullPages(peer);
  if (result != nullptr) *result = s;
  MetricAdd(peer->bytes_metric, peer->client->bytes_received() - bytes_before);
  if (peer->abort) return start;  // stopping or removed: never pulled again
  if (s.ok()) {
    peer->rounds.fetch_add(1);
    MetricAdd(peer->rounds_ok_metric);
    return start + options_.merge_interval_ms;
  }
  RecordFailure(peer, s);
  // Its connection is of no use now; a peer that is down then holds no
  // descriptors (curl keeps a socket pair per handle) while it backs off.
  peer->client.reset();
  const int failures = std::min(peer->failures.load(), 20);
  const int64_t backoff = std::min<int64_t>(
      static_cast<int64_t>(options_.merge_interval_ms) << (failures - 1),
      options_.max_backoff_ms);
  return Now() + backoff;
}

Status Merger::PullPages(Peer* peer) {
  PeerClient* client = peer->client.get();
  const uint64_t round_start = client->bytes_received();
  for (;;) {
    ChangesPage page;
    Status s = client->FetchChanges(peer->cursor, options_.page_limit, &page);
    if (!s.ok()) return s;
    bool self = false;
    s = CheckIdentity(peer, page.node, &self);
    if (!s.ok() || self) return s;
    MetricAdd(peer->counters_metric,
              page.counters.size() + page.rejected.size());
    for (const RejectedCounter& rejected : page.rejected) {
      ReportRejected(peer, rejected.name, rejected.reason, rejected.detail);
    }
    for (const CounterChange& change : page.counters) {
      MergeState(peer, change.name, change.state, /*may_move=*/true);
    }
    peer->cursor = page.next;
    RecordSuccess(peer);
    if (!page.more) return Status::OK();
    if (peer->abort) return Status::Unavailable("stopping");
    // The rest waits for the next round: a peer that always has more
    // cannot keep this thread.
    if (client->bytes_received() - round_start >= options_.max_round_bytes) {
      VLOG(1) << "peer " << peer->address << " has more; round budget spent";
      return Status::OK();
    }
  }
}

Status Merger::CheckIdentity(Peer* peer, const PeerIdentity& node, bool* self) {
  *self = false;
  if (node.node_id == store_->node_id()) {
    // A counter reply carries no instance; its actor id (with the
    // incarnation) then tells. The changes pulls tell copies apart.
    const bool us = node.instance != 0 ? node.instance == store_->instance_id()
                                       : node.actor == store_->actor_id();
    if (us) {
      *self = true;
      if (!peer->self.exchange(true)) {
        LOG(INFO) << "peer " << peer->address
                  << " answered as this node; skipping it";
        MetricSet(peer->up_metric, 0);
      }
      return Status::OK();
    }
    MutexLock lock(&peer->log_mu);
    if (LogDue(Now(), &peer->last_conflict_log_ms, kConflictLogEveryMs)) {
      LOG(ERROR) << "peer " << peer->address
                 << " runs with this node's node id " << node.node_id
                 << " but another store: is it a copy of our data directory? "
                    "Its actor ids can collide with ours; not merging from it";
    }
    return Status::Corruption(peer->address + " has our node id " +
                              node.node_id);
  }
  if (node.challenge_id == store_->challenge_id()) {
    MutexLock lock(&peer->log_mu);
    if (peer->duplicate_node_id != node.node_id) {
      peer->duplicate_node_id = node.node_id;
      MetricAdd(duplicate_metric_);
      peer->last_conflict_log_ms = INT64_MIN;
    }
    if (LogDue(Now(), &peer->last_conflict_log_ms, kConflictLogEveryMs)) {
      LOG(ERROR) << "DUPLICATE CHALLENGE ID: peer " << peer->address
                 << " (node id " << node.node_id
                 << ") runs with our challenge id \"" << node.challenge_id
                 << "\" (our node id " << store_->node_id()
                 << "). Updates stay apart because actor ids include the node "
                    "id, but give every node its own --challenge_id";
    }
  }
  return Status::OK();
}

bool Merger::OnlyRaisesBaselines(const PnCounter& local,
                                 const std::string& actor,
                                 const ActorCounts& counts) {
  auto it = local.actors().find(actor);
  return it != local.actors().end() && counts.p <= it->second.p &&
         counts.n <= it->second.n;
}

bool Merger::IsOwnCurrentOrLaterActor(const std::string& actor) const {
  uint64_t incarnation = 0;
  switch (ClassifyActor(actor, store_->challenge_id(), store_->node_id(),
                        &incarnation)) {
    case ActorOwner::kOther:
      return false;
    case ActorOwner::kLookalike:  // never ours to take back
      return true;
    case ActorOwner::kOwn:
      // Only an earlier run's incarnation is ours to take back.
      return incarnation >= store_->FirstRefusedIncarnation();
  }
  return true;
}

void Merger::CheckOwnClaim(Peer* peer, const std::string& name,
                           const std::string& actor,
                           const ActorCounts& counts) {
  Status s = store_->CheckPeerOwnCount(name, actor, counts, nullptr);
  if (s.ok()) return;
  if (!s.IsBusy()) {
    VLOG(1) << "checking " << name << ": " << s.ToString();
    return;
  }
  MutexLock lock(&peer->log_mu);
  ++peer->forged_unlogged;
  if (!LogDue(Now(), &peer->last_forged_log_ms, kConflictLogEveryMs)) return;
  LOG(ERROR) << "peer " << peer->address << " forges this node's counts, or "
             << "is confused: " << s.message() << "; its states of our "
             << "current actor are dropped (" << peer->forged_unlogged
             << " such claim(s) since the last such line)";
  peer->forged_unlogged = 0;
}

void Merger::PullSoon(Peer* peer) {
  {
    MutexLock lock(&mu_);
    if (peer->busy) return;
    peer->due_ms = std::min(peer->due_ms, Now());
  }
  cv_.SignalAll();
}

void Merger::MergeState(Peer* peer, const std::string& name,
                        const PnCounter& state, bool may_move) {
  // More than we hold for our current actor: the peer saw increments this
  // node lost (its data dir was put back or copied), or forged them. The
  // store moves to a new incarnation (rate limited), so ours are never
  // hidden behind it; the old actor then merges if an earlier run of this
  // node used it. A refresh leaves the decision to a pull.
  for (const auto& [actor, counts] : state.actors()) {
    uint64_t incarnation = 0;
    if (ClassifyActor(actor, store_->challenge_id(), store_->node_id(),
                      &incarnation) != ActorOwner::kOwn ||
        incarnation != store_->incarnation()) {
      continue;
    }
    if (may_move) {
      CheckOwnClaim(peer, name, actor, counts);
      continue;
    }
    PnCounter local;
    (void)store_->Get(name, &local);  // NotFound: empty, below any claim
    if (!OnlyRaisesBaselines(local, actor, counts)) PullSoon(peer);
  }
  PnCounter merged;
  Status s = store_->Get(name, &merged);
  if (!s.ok() && !s.IsNotFound()) {
    VLOG(1) << "reading " << name << ": " << s.ToString();
    return;
  }
  PnCounter incoming;
  for (const auto& [actor, counts] : state.actors()) {
    if (IsOwnCurrentOrLaterActor(actor) &&
        !OnlyRaisesBaselines(merged, actor, counts)) {
      ReportRejected(peer, name, "own_actor",
                     "actor " + actor + " is this node at incarnation " +
                         std::to_string(store_->incarnation()) +
                         " or later; only this node raises it");
      continue;
    }
    incoming.SetActor(actor, counts);
  }
  const size_t actors_before = merged.actors().size();
  if (!merged.Merge(incoming) && s.ok()) return;  // nothing new
  // Updates of actors we hold always pass; only new actors are bounded.
  if (merged.actors().size() > actors_before) {
    if (merged.actors().size() > options_.max_actors_per_counter) {
      return ReportRejected(peer, name, "too_many_actors",
                            "merging would give " +
                                std::to_string(merged.actors().size()) +
                                " actors");
    }
    const size_t bytes = EncodedCounterBytes(merged);
    if (bytes > options_.max_counter_bytes) {
      return ReportRejected(
          peer, name, "too_large",
          "merging would give " + std::to_string(bytes) + " bytes");
    }
  }
  s = store_->Merge(name, incoming, nullptr);
  if (!s.ok()) VLOG(1) << "merging " << name << ": " << s.ToString();
}

void Merger::ReportRejected(Peer* peer, const std::string& name,
                            const std::string& reason,
                            const std::string& detail) {
  auto it = peer->rejected_counters_metrics.find(reason);
  if (it != peer->rejected_counters_metrics.end()) MetricAdd(it->second);
  MutexLock lock(&peer->log_mu);
  ++peer->rejects_unlogged;
  if (!LogDue(Now(), &peer->last_reject_log_ms, kLogEveryMs)) return;
  LOG(WARNING) << "refused counter \"" << name << "\" from peer "
               << peer->address << " (" << reason << ": " << detail << "); "
               << peer->rejects_unlogged
               << " counter(s) refused since the last such line, next logged "
                  "in "
               << kLogEveryMs / 1000 << " s at most";
  peer->rejects_unlogged = 0;
}

void Merger::RecordSuccess(Peer* peer) {
  peer->last_success_ms = Now();
  MetricSet(peer->up_metric, 1);
  const int failures = peer->failures.exchange(0);
  if (failures == 0) return;
  MutexLock lock(&peer->log_mu);
  peer->last_error.clear();
  if (LogDue(Now(), &peer->last_recovery_log_ms, kLogEveryMs)) {
    LOG(INFO) << "peer " << peer->address << " answers again after " << failures
              << " failed pull(s)";
  }
}

void Merger::RecordFailure(Peer* peer, const Status& status) {
  const int failures = peer->failures.fetch_add(1) + 1;
  MetricAdd(peer->rounds_error_metric);
  if (status.IsCorruption()) MetricAdd(peer->rejected_metric);
  if (!peer->Connected(Now(), shared_->connected_window_ms)) {
    MetricSet(peer->up_metric, 0);
  }
  MutexLock lock(&peer->log_mu);
  peer->last_error = status.ToString();
  if (LogDue(Now(), &peer->last_failure_log_ms, kLogEveryMs)) {
    LOG(WARNING) << "pulling from peer " << peer->address << " failed ("
                 << failures << " in a row, next logged in "
                 << kLogEveryMs / 1000 << " s at most): " << status.ToString();
  }
}

std::unique_ptr<CounterFanout> Merger::TakeFanout() {
  std::unique_ptr<CounterFanout> fanout;
  {
    MutexLock lock(&fanouts_mu_);
    if (!fanouts_.empty()) {
      fanout = std::move(fanouts_.back());
      fanouts_.pop_back();
      busy_fanouts_.push_back(fanout.get());
      return fanout;
    }
  }
  PeerClientOptions client_options = ClientOptions();
  // One counter and its envelope; larger replies are refused.
  client_options.max_reply_bytes =
      options_.max_counter_bytes + kReplySlackBytes;
  client_options.abort = &refreshes_cancelled_;
  fanout = std::make_unique<CounterFanout>(client_options);
  MutexLock lock(&fanouts_mu_);
  busy_fanouts_.push_back(fanout.get());
  return fanout;
}

void Merger::ReturnFanout(std::unique_ptr<CounterFanout> fanout) {
  constexpr size_t kMaxIdleFanouts = 16;
  MutexLock lock(&fanouts_mu_);
  busy_fanouts_.erase(
      std::find(busy_fanouts_.begin(), busy_fanouts_.end(), fanout.get()));
  if (refreshes_cancelled_) return;  // never used again
  if (fanouts_.size() < kMaxIdleFanouts) fanouts_.push_back(std::move(fanout));
}

Status Merger::RefreshCounter(const std::string& name,
                              std::vector<std::string>* unreachable) {
  std::vector<std::shared_ptr<Peer>> targets;
  {
    MutexLock lock(&mu_);
    for (const auto& peer : peers_) {
      if (!peer->skipped()) targets.push_back(peer);
    }
  }
  std::vector<std::string> addresses;
  for (const auto& peer : targets) addresses.push_back(peer->address);
  if (refreshes_cancelled_) {
    MetricAdd(refresh_unavailable_metric_);
    unreachable->insert(unreachable->end(), addresses.begin(), addresses.end());
    return Status::Unavailable("stopping: refreshes cancelled");
  }

  std::vector<CounterFanout::Result> results;
  if (!targets.empty()) {
    std::unique_ptr<CounterFanout> fanout = TakeFanout();
    fanout->FetchCounter(addresses, name, &results);
    ReturnFanout(std::move(fanout));
  }

  std::vector<std::string> failed;
  for (size_t i = 0; i < targets.size(); ++i) {
    Peer* peer = targets[i].get();
    Status s = results[i].status;
    bool self = false;
    if (s.ok()) s = CheckIdentity(peer, results[i].node, &self);
    if (s.ok()) {
      if (!self) {
        // A counter the peer does not have creates nothing here.
        if (results[i].found) {
          MergeState(peer, name, results[i].state, /*may_move=*/false);
        }
        peer->last_success_ms = Now();
      }
      continue;
    }
    if (s.IsCorruption()) MetricAdd(peer->rejected_metric);
    VLOG(1) << "refreshing " << name << " from " << peer->address << ": "
            << s.ToString();
    failed.push_back(peer->address);
  }
  if (failed.empty()) {
    MetricAdd(refresh_ok_metric_);
    return Status::OK();
  }
  MetricAdd(refresh_unavailable_metric_);
  std::string message = "no answer from";
  for (const std::string& address : failed) message += " " + address;
  unreachable->insert(unreachable->end(), failed.begin(), failed.end());
  return Status::Unavailable(message);
}

std::vector<std::string> Merger::ConnectedNodes() const {
  std::vector<std::string> connected;
  const int64_t now = Now();
  MutexLock lock(&mu_);
  for (const auto& peer : peers_) {
    if (peer->Connected(now, shared_->connected_window_ms)) {
      connected.push_back(peer->address);
    }
  }
  return connected;
}

std::vector<PeerStatus> Merger::PeerStatuses() const {
  std::vector<PeerStatus> statuses;
  const int64_t now = Now();
  MutexLock lock(&mu_);
  for (const auto& peer : peers_) {
    PeerStatus status;
    status.address = peer->address;
    status.self = peer->skipped();
    status.connected = peer->Connected(now, shared_->connected_window_ms);
    status.failures = peer->failures.load();
    status.rounds = peer->rounds.load();
    MutexLock peer_lock(&peer->log_mu);
    status.last_error = peer->last_error;
    statuses.push_back(std::move(status));
  }
  return statuses;
}

}  // namespace dist_counter
