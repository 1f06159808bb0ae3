// Starting, stopping, crashing and restoring the simulated nodes, and
// their peer lists (sim_cluster.h).

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "sim_cluster.h"

namespace dist_counter {
namespace sim {

namespace fs = std::filesystem;

Simulation::~Simulation() {
  for (size_t i = 0; i < nodes_.size(); ++i) CloseNode(static_cast<int>(i));
  network_.reset();
  std::error_code ignored;
  if (!root_.empty()) fs::remove_all(root_, ignored);
}

std::vector<std::string> Simulation::AllPeers(int i) const {
  std::vector<std::string> peers;
  for (size_t j = 0; j < nodes_.size(); ++j) {
    if (static_cast<int>(j) != i) peers.push_back(nodes_[j].address);
  }
  return peers;
}

std::vector<int> Simulation::Nodes(NodeState state) const {
  std::vector<int> found;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].state == state) found.push_back(static_cast<int>(i));
  }
  return found;
}

bool Simulation::Setup() {
  std::string base = options_.work_dir;
  if (base.empty()) {
    // Memory is fastest: every start and durable write syncs.
    const char* tmp = getenv("TMPDIR");
    std::error_code error;
    base = tmp != nullptr && *tmp != '\0'        ? tmp
           : fs::is_directory("/dev/shm", error) ? "/dev/shm"
                                                 : "/tmp";
  }
  std::string pattern = base + "/dc_sim_XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    Fail("cannot make a directory under " + base);
    return false;
  }
  root_ = pattern;
  const int n = std::clamp(options_.nodes, 1, 50);
  nodes_.resize(n);
  std::vector<std::string> addresses;
  for (int i = 0; i < n; ++i) {
    nodes_[i].address = Name(i) + ":7777";
    nodes_[i].dir = root_ + "/" + Name(i);
    addresses.push_back(nodes_[i].address);
  }
  network_ = std::make_unique<SimNetwork>(
      SimNetworkOptions(), addresses,
      [this](int i) -> Api* {
        return nodes_[i].state == NodeState::kUp ? nodes_[i].api.get()
                                                 : nullptr;
      },
      &random_, &result_.trace);
  // In some runs the last node joins later.
  if (n >= 4 && random_.Percent(50)) nodes_[n - 1].joined = false;
  for (int i = 0; i < n; ++i) {
    if (!nodes_[i].joined) continue;
    std::vector<std::string> peers;
    for (int j = 0; j < n; ++j) {
      if (j != i && nodes_[j].joined) peers.push_back(nodes_[j].address);
    }
    if (!OpenNode(i)) return false;
    Status s = nodes_[i].store->SetPeers(peers);
    if (!s.ok()) {
      Fail(Name(i) + " SetPeers: " + s.ToString());
      return false;
    }
    nodes_[i].merger->SetPeers(peers);
  }
  return true;
}

bool Simulation::OpenNode(int i) {
  SimNode& node = nodes_[i];
  StoreOptions options;
  options.data_dir = node.dir;
  options.challenge_id = "sim" + std::to_string(i);
  options.durable = result_.durable;
  // Flushes happen when the simulation says, never on the wall clock.
  options.flush_interval_ms = 3600 * 1000;
  options.max_unflushed_ms = 24 * 3600 * 1000;
  options.close_retry_ms = 0;
  options.now_ms = [this] { return now_ms_; };
  Status s = CounterStore::Open(options, &node.store);
  if (!s.ok()) {
    Fail(Name(i) + " does not open: " + s.ToString());
    return false;
  }
  ApiOptions api_options;
  api_options.consistent_threads = 1;
  api_options.protected_mode = false;
  node.api =
      std::make_unique<Api>(api_options, node.store.get(), nullptr, nullptr);
  node.transport = network_->NewTransport(i);
  MergerOptions merger_options;
  merger_options.transport = node.transport.get();
  merger_options.page_limit = 2;  // several pages per round
  merger_options.now_ms = [this] { return now_ms_; };
  node.merger = std::make_unique<Merger>(merger_options, node.store.get());
  node.state = NodeState::kUp;
  actor_ids_.insert(node.store->actor_id());
  return true;
}

void Simulation::CloseNode(int i) {
  SimNode& node = nodes_[i];
  node.merger.reset();
  if (node.api) node.api->Stop();
  node.api.reset();
  node.transport.reset();
  if (node.store) (void)node.store->Close();
  node.store.reset();
  node.state = NodeState::kDown;
}

// Starts node i, which was in no peer list, and adds it to every list.
void Simulation::Join(int i) {
  Trace(Name(i) + " joins");
  if (!OpenNode(i)) return;
  SimNode& node = nodes_[i];
  node.joined = true;
  Status s = node.store->SetPeers(AllPeers(i));
  if (s.ok()) node.merger->SetPeers(AllPeers(i));
  for (SimNode& other : nodes_) {
    if (!other.store || &other == &node) continue;
    std::vector<std::string> peers = other.store->Peers();
    if (std::find(peers.begin(), peers.end(), node.address) != peers.end()) {
      continue;
    }
    peers.push_back(node.address);
    if (other.store->SetPeers(peers).ok()) other.merger->SetPeers(peers);
  }
}

void Simulation::Crash(int i) {
  SimNode& node = nodes_[i];
  // What a kill -9 leaves: the files as they are now (RocksDB's writes are
  // in them; nothing that Close() would still write).
  const std::string copy = node.dir + ".crash";
  std::error_code error;
  // RocksDB's own threads may remove an obsolete file while we copy: then
  // copy again.
  for (int attempt = 0; attempt < 10; ++attempt) {
    error.clear();
    fs::remove_all(copy, error);
    fs::copy(node.dir, copy, fs::copy_options::recursive, error);
    if (!error) break;
  }
  if (error) return Fail("copying " + node.dir + ": " + error.message());
  CloseNode(i);
  fs::remove_all(node.dir, error);
  if (!error) fs::rename(copy, node.dir, error);
  if (error) return Fail("replacing " + node.dir + ": " + error.message());
  // Unflushed acknowledged increments may be gone, or live on at peers.
  for (const auto& [name, delta] : node.unflushed) {
    Settle(i, name, delta, /*kept=*/false);
  }
  node.unflushed.clear();
  if (!result_.durable) ++node.losses;  // durable: everything acknowledged
  ++result_.crashes;
  Trace(Name(i) + " crashes");
}

void Simulation::Restart(int i) {
  Trace(Name(i) + " restarts");
  if (!OpenNode(i)) return;
}

void Simulation::ChangeMembership(int i) {
  SimNode& node = nodes_[i];
  std::vector<std::string> peers = node.store->Peers();
  std::vector<std::string> all = AllPeers(i);
  std::string what;
  if (peers.size() < all.size() && random_.Percent(60)) {
    peers = all;
    what = "takes every peer back";
  } else if (!peers.empty()) {
    const size_t drop = random_.Below(peers.size());
    what = "drops peer " + peers[drop].substr(0, peers[drop].find(':'));
    peers.erase(peers.begin() + static_cast<long>(drop));
  } else {
    return;
  }
  Status s = node.store->SetPeers(peers);
  if (s.ok()) node.merger->SetPeers(peers);
  Trace(Name(i) + " " + what + " -> " + (s.ok() ? "OK" : s.ToString()));
}

// Stops node i cleanly, copies its data directory and starts it again (the
// same incarnation: the stop was clean).
void Simulation::TakeSnapshot(int i) {
  SimNode& node = nodes_[i];
  CloseNode(i);  // a clean stop writes everything
  for (const auto& [name, delta] : node.unflushed) {
    Settle(i, name, delta, /*kept=*/true);
  }
  node.unflushed.clear();
  node.snapshot = node.dir + ".snapshot";
  std::error_code error;
  fs::remove_all(node.snapshot, error);
  fs::copy(node.dir, node.snapshot, fs::copy_options::recursive, error);
  if (error) return Fail("copying " + node.dir + ": " + error.message());
  node.since_snapshot.clear();
  Trace(Name(i) + " stops cleanly, its data directory is copied, restarts");
  if (OpenNode(i)) node.snapshot_incarnation = node.store->incarnation();
}

// Stops node i cleanly and starts it on the copy TakeSnapshot() made, as an
// operator putting back a file system snapshot does.
void Simulation::RestoreSnapshot(int i) {
  SimNode& node = nodes_[i];
  CloseNode(i);
  std::error_code error;
  fs::remove_all(node.dir, error);
  if (!error) {
    fs::copy(node.snapshot, node.dir, fs::copy_options::recursive, error);
  }
  if (error) return Fail("restoring " + node.dir + ": " + error.message());
  // What the node held only since the copy is gone from it; peers may
  // still hold it.
  for (const auto& [name, delta] : node.unflushed) {
    Settle(i, name, delta, /*kept=*/false);
  }
  node.unflushed.clear();
  for (const auto& [name, delta] : node.since_snapshot) {
    bounds_[name].certain -= delta;
    Settle(i, name, delta, /*kept=*/false);
  }
  node.since_snapshot.clear();
  ++node.losses;
  Trace(Name(i) + " stops cleanly and restarts on its copied data directory");
  OpenNode(i);
}

}  // namespace sim
}  // namespace dist_counter
