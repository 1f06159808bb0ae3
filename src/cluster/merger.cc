#include "cluster/merger.h"

#include <glog/logging.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <thread>
#include <utility>

#include "cluster/peer_client.h"
#include "crdt/pn_counter.h"
#include "store/counter_store.h"
#include "util/metrics.h"
#include "util/peer_address.h"

namespace dist_counter {

namespace {

// How often a peer's repeated failures are logged.
constexpr int64_t kLogEveryMs = 10000;
// How often an identity conflict is logged.
constexpr int64_t kConflictLogEveryMs = 30000;

int64_t NowMs() {
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

// True (and *last_ms moved to now) if a log line is due.
bool LogDue(int64_t* last_ms, int64_t every_ms) {
  const int64_t now = NowMs();
  if (*last_ms != INT64_MIN && now - *last_ms < every_ms) return false;
  *last_ms = now;
  return true;
}

}  // namespace

struct Merger::Peer {
  std::string address;  // as configured
  std::string key;      // PeerKey(address)

  // Worker control.
  std::thread thread;
  std::mutex mu;  // guards stop; with cv
  std::condition_variable cv;
  bool stop = false;
  std::atomic<bool> abort{false};  // set with stop: abandons a transfer

  // Health, read without locks by other threads.
  std::atomic<bool> obviously_self{false};  // our address: never asked
  std::atomic<bool> self{false};            // answered with our identity
  std::atomic<int64_t> added_ms{0};
  std::atomic<int64_t> last_success_ms{-1};  // -1: never
  std::atomic<int> failures{0};
  std::atomic<uint64_t> rounds{0};

  std::mutex log_mu;  // guards the fields below
  std::string last_error;
  int64_t last_failure_log_ms = INT64_MIN;
  int64_t last_recovery_log_ms = INT64_MIN;
  int64_t last_conflict_log_ms = INT64_MIN;
  std::string duplicate_node_id;  // node id last reported as a duplicate

  // Metrics; null without a Metrics object.
  std::atomic<uint64_t>* rounds_ok_metric = nullptr;
  std::atomic<uint64_t>* rounds_error_metric = nullptr;
  std::atomic<uint64_t>* bytes_metric = nullptr;
  std::atomic<uint64_t>* counters_metric = nullptr;
  std::atomic<uint64_t>* rejected_metric = nullptr;
  std::atomic<int64_t>* up_metric = nullptr;
  std::atomic<int64_t>* age_metric = nullptr;

  bool skipped() const { return obviously_self.load() || self.load(); }

  bool Connected(int64_t now, int64_t window_ms) const {
    const int64_t last = last_success_ms.load();
    return !skipped() && last >= 0 && now - last <= window_ms;
  }
};

// What the metrics collector reads; it may outlive the Merger.
struct Merger::Shared {
  std::mutex mu;  // guards peers
  std::vector<std::shared_ptr<Peer>> peers;
  int64_t connected_window_ms = 0;  // fixed at construction

  void Collect() {
    std::lock_guard<std::mutex> lock(mu);
    const int64_t now = NowMs();
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
    : options_(options), store_(store), shared_(std::make_shared<Shared>()) {
  options_.merge_interval_ms = std::max(1, options_.merge_interval_ms);
  options_.peer_timeout_ms = std::max(1, options_.peer_timeout_ms);
  options_.max_backoff_ms =
      std::max(options_.merge_interval_ms, options_.max_backoff_ms);
  options_.page_limit = std::max<size_t>(1, options_.page_limit);
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
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->peers.clear();
}

std::shared_ptr<Merger::Peer> Merger::NewPeer(const std::string& address) {
  auto peer = std::make_shared<Peer>();
  peer->address = address;
  peer->key = PeerKey(address);
  peer->added_ms = NowMs();
  peer->obviously_self = ObviouslySelf(address);
  Metrics* m = options_.metrics;
  if (m != nullptr && !peer->obviously_self) {
    const std::string label = "peer=\"" + EscapeLabelValue(address) + "\"";
    peer->rounds_ok_metric =
        m->Counter("dist_counter_merge_rounds_total", label + ",result=\"ok\"");
    peer->rounds_error_metric = m->Counter("dist_counter_merge_rounds_total",
                                           label + ",result=\"error\"");
    peer->bytes_metric =
        m->Counter("dist_counter_peer_pulled_bytes_total", label);
    peer->counters_metric =
        m->Counter("dist_counter_peer_pulled_counters_total", label);
    peer->rejected_metric =
        m->Counter("dist_counter_peer_rejected_replies_total", label);
    peer->up_metric = m->Gauge("dist_counter_peer_up", label);
    peer->age_metric =
        m->Gauge("dist_counter_peer_last_success_age_seconds", label);
  }
  return peer;
}

bool Merger::ObviouslySelf(const std::string& address) const {
  PeerAddress parsed;
  if (options_.port == 0 || !ParsePeerAddress(address, &parsed).ok() ||
      parsed.port != options_.port) {
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
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ || stopped_) return;
  started_ = true;
  if (port != 0) options_.port = port;
  for (const auto& peer : peers_) {
    peer->obviously_self = ObviouslySelf(peer->address);
    if (peer->obviously_self) {
      LOG(INFO) << "peer " << peer->address << " is this node; skipping it";
    }
    StartWorker(peer);
  }
}

void Merger::StartWorker(const std::shared_ptr<Peer>& peer) {
  if (peer->obviously_self || peer->thread.joinable()) return;
  peer->thread = std::thread([this, raw = peer.get()] { Run(raw); });
}

void Merger::StopWorkers(std::vector<std::shared_ptr<Peer>>* peers) {
  for (const auto& peer : *peers) {
    {
      std::lock_guard<std::mutex> lock(peer->mu);
      peer->stop = true;
    }
    peer->abort = true;
    peer->cv.notify_all();
  }
  for (const auto& peer : *peers) {
    if (peer->thread.joinable()) peer->thread.join();
    MetricSet(peer->up_metric, 0);
  }
}

void Merger::Stop() {
  std::vector<std::shared_ptr<Peer>> peers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    peers = peers_;
    stopped_ = true;
  }
  StopWorkers(&peers);
}

void Merger::SetPeers(const std::vector<std::string>& peers) {
  std::vector<std::shared_ptr<Peer>> removed;
  {
    std::lock_guard<std::mutex> lock(mu_);
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
      if (!peer) {
        peer = NewPeer(address);
        if (started_ && !stopped_) StartWorker(peer);
      }
      next.push_back(std::move(peer));
    }
    for (const auto& old : peers_) {
      if (std::find(next.begin(), next.end(), old) == next.end()) {
        removed.push_back(old);
      }
    }
    peers_ = std::move(next);
    std::lock_guard<std::mutex> shared_lock(shared_->mu);
    shared_->peers = peers_;
  }
  StopWorkers(&removed);
}

void Merger::Run(Peer* peer) {
  PeerClientOptions client_options;
  client_options.connect_timeout_ms = options_.peer_timeout_ms;
  client_options.timeout_ms = options_.peer_timeout_ms;
  client_options.max_reply_bytes = options_.max_reply_bytes;
  client_options.abort = &peer->abort;
  PeerClient client(peer->address, client_options);
  ChangesCursor cursor;

  const auto interval = std::chrono::milliseconds(options_.merge_interval_ms);
  auto next_round = std::chrono::steady_clock::now();
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(peer->mu);
      if (peer->self) {
        peer->cv.wait(lock, [peer] { return peer->stop; });
      } else {
        peer->cv.wait_until(lock, next_round, [peer] { return peer->stop; });
      }
      if (peer->stop) return;
    }
    const auto start = std::chrono::steady_clock::now();
    const uint64_t bytes_before = client.bytes_received();
    Status s = PullOnce(peer, &client, &cursor);
    MetricAdd(peer->bytes_metric, client.bytes_received() - bytes_before);
    if (peer->abort) return;
    if (s.ok()) {
      peer->rounds.fetch_add(1);
      MetricAdd(peer->rounds_ok_metric);
      next_round = start + interval;
      continue;
    }
    RecordFailure(peer, s);
    const int failures = std::min(peer->failures.load(), 20);
    const int64_t backoff = std::min<int64_t>(
        static_cast<int64_t>(options_.merge_interval_ms) << (failures - 1),
        options_.max_backoff_ms);
    next_round =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(backoff);
  }
}

Status Merger::PullOnce(Peer* peer, PeerClient* client, ChangesCursor* cursor) {
  for (;;) {
    ChangesPage page;
    Status s = client->FetchChanges(*cursor, options_.page_limit, &page);
    if (!s.ok()) return s;
    bool self = false;
    s = CheckIdentity(peer, page.node, &self);
    if (!s.ok() || self) return s;
    MetricAdd(peer->counters_metric, page.counters.size());
    for (const CounterChange& change : page.counters) {
      MergeState(change.name, change.state);
    }
    *cursor = page.next;
    RecordSuccess(peer);
    if (!page.more) return Status::OK();
    if (peer->abort) return Status::Unavailable("stopping");
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
    std::lock_guard<std::mutex> lock(peer->log_mu);
    if (LogDue(&peer->last_conflict_log_ms, kConflictLogEveryMs)) {
      LOG(ERROR) << "peer " << peer->address
                 << " runs with this node's node id " << node.node_id
                 << " but another store: is it a copy of our data directory? "
                    "Its actor ids can collide with ours; not merging from it";
    }
    return Status::Corruption(peer->address + " has our node id " +
                              node.node_id);
  }
  if (node.challenge_id == store_->challenge_id()) {
    std::lock_guard<std::mutex> lock(peer->log_mu);
    if (peer->duplicate_node_id != node.node_id) {
      peer->duplicate_node_id = node.node_id;
      MetricAdd(duplicate_metric_);
      peer->last_conflict_log_ms = INT64_MIN;
    }
    if (LogDue(&peer->last_conflict_log_ms, kConflictLogEveryMs)) {
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

void Merger::MergeState(const std::string& name, const PnCounter& state) {
  const std::string& own = store_->actor_id();
  Status s;
  if (state.actors().count(own) == 0) {
    s = store_->Merge(name, state, nullptr);
  } else {
    // Only this node raises its own actor; a peer cannot know more of it.
    PnCounter others;
    for (const auto& [actor, counts] : state.actors()) {
      if (actor != own) others.SetActor(actor, counts);
    }
    s = store_->Merge(name, others, nullptr);
  }
  if (!s.ok()) VLOG(1) << "merging " << name << ": " << s.ToString();
}

void Merger::RecordSuccess(Peer* peer) {
  peer->last_success_ms = NowMs();
  MetricSet(peer->up_metric, 1);
  const int failures = peer->failures.exchange(0);
  if (failures == 0) return;
  std::lock_guard<std::mutex> lock(peer->log_mu);
  peer->last_error.clear();
  if (LogDue(&peer->last_recovery_log_ms, kLogEveryMs)) {
    LOG(INFO) << "peer " << peer->address << " answers again after " << failures
              << " failed pull(s)";
  }
}

void Merger::RecordFailure(Peer* peer, const Status& status) {
  const int failures = peer->failures.fetch_add(1) + 1;
  MetricAdd(peer->rounds_error_metric);
  if (status.IsCorruption()) MetricAdd(peer->rejected_metric);
  if (!peer->Connected(NowMs(), shared_->connected_window_ms)) {
    MetricSet(peer->up_metric, 0);
  }
  std::lock_guard<std::mutex> lock(peer->log_mu);
  peer->last_error = status.ToString();
  if (LogDue(&peer->last_failure_log_ms, kLogEveryMs)) {
    LOG(WARNING) << "pulling from peer " << peer->address << " failed ("
                 << failures << " in a row, next logged in "
                 << kLogEveryMs / 1000 << " s at most): " << status.ToString();
  }
}

std::unique_ptr<CounterFanout> Merger::TakeFanout() {
  {
    std::lock_guard<std::mutex> lock(fanouts_mu_);
    if (!fanouts_.empty()) {
      std::unique_ptr<CounterFanout> fanout = std::move(fanouts_.back());
      fanouts_.pop_back();
      return fanout;
    }
  }
  PeerClientOptions client_options;
  client_options.connect_timeout_ms = options_.peer_timeout_ms;
  client_options.timeout_ms = options_.peer_timeout_ms;
  client_options.max_reply_bytes = options_.max_reply_bytes;
  return std::make_unique<CounterFanout>(client_options);
}

void Merger::ReturnFanout(std::unique_ptr<CounterFanout> fanout) {
  constexpr size_t kMaxIdleFanouts = 16;
  std::lock_guard<std::mutex> lock(fanouts_mu_);
  if (fanouts_.size() < kMaxIdleFanouts) fanouts_.push_back(std::move(fanout));
}

Status Merger::RefreshCounter(const std::string& name,
                              std::vector<std::string>* unreachable) {
  std::vector<std::shared_ptr<Peer>> targets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& peer : peers_) {
      if (!peer->skipped()) targets.push_back(peer);
    }
  }
  std::vector<std::string> addresses;
  for (const auto& peer : targets) addresses.push_back(peer->address);

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
        MergeState(name, results[i].state);
        peer->last_success_ms = NowMs();
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
  const int64_t now = NowMs();
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& peer : peers_) {
    if (peer->Connected(now, shared_->connected_window_ms)) {
      connected.push_back(peer->address);
    }
  }
  return connected;
}

std::vector<PeerStatus> Merger::PeerStatuses() const {
  std::vector<PeerStatus> statuses;
  const int64_t now = NowMs();
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& peer : peers_) {
    PeerStatus status;
    status.address = peer->address;
    status.self = peer->skipped();
    status.connected = peer->Connected(now, shared_->connected_window_ms);
    status.failures = peer->failures.load();
    status.rounds = peer->rounds.load();
    std::lock_guard<std::mutex> peer_lock(peer->log_mu);
    status.last_error = peer->last_error;
    statuses.push_back(std::move(status));
  }
  return statuses;
}

}  // namespace dist_counter
