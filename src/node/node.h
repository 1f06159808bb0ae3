// Node builds one dist_counter node from its options and wires the modules:
// the store, the metrics, the HTTP API and server, and the cluster merger
// (always built; with no peers it pulls nothing until POST /config or
// --peers_dns gives it some). main.cc only reads flags and signals.
//
// Start() returns a serving node; Stop() stops it cleanly, tearing down in
// reverse dependency order so that nothing a thread may still call is gone:
// new connections and requests are refused (503), queued consistent reads
// answered 503, running ones cancelled (they end within milliseconds,
// whatever the peer timeout), owed
// replies sent, the HTTP threads joined, then the DNS peer resolver and the
// merger stopped, then every counter flushed and RocksDB closed.
// Thread-safe.
//
// Lock order: Stop() holds mu_ while it stops the modules, so mu_ comes
// before every lock they take (HttpServer's, the Api's WorkQueue's, the
// peer resolver's, the merger's and the store's); none of them ever calls
// back into Node. The resolver's callback (merger, then store) runs on its
// own thread under none of them.

#ifndef DIST_COUNTER_NODE_NODE_H_
#define DIST_COUNTER_NODE_NODE_H_

#include <memory>
#include <string>
#include <vector>

#include "api/http_server.h"
#include "api/routes.h"
#include "store/counter_store.h"
#include "util/mutex.h"
#include "util/status.h"
#include "util/thread_annotations.h"

namespace dist_counter {

class Metrics;
class Merger;
class MergerView;
class PeerResolver;

struct NodeOptions {
  StoreOptions store;      // data_dir, challenge_id, flush, durable
  HttpServerOptions http;  // bind, port, threads, timeouts, caps, budgets
  ApiOptions api;          // body and listing limits
  // When set, replaces the stored peer list at startup (--actors, ACTORS).
  bool peers_given = false;
  std::vector<std::string> peers;
  int merge_interval_ms = 1000;  // how often the merger pulls every peer
  int peer_timeout_ms = 500;     // bound on one peer request
  // Bounds on pulls and on what peers send (see cluster/merger.h).
  int pull_threads = 8;                  // peers pulled at once
  size_t max_actors_per_counter = 1024;  // per counter from a peer
  size_t max_counter_bytes = 256 << 10;  // per encoded counter state
  size_t max_page_bytes = 1 << 20;       // per changes page
  size_t max_round_bytes = 16 << 20;     // per peer per merge interval
  // When set ("name:port"), the peer list is every IPv4 address `name`
  // resolves to, at `port`, re-resolved every merge interval
  // (cluster/peer_resolver.h), persisted like a POST /config list (which
  // api.peers_dns then refuses) and cut to api.max_peers. Excludes
  // peers_given.
  std::string peers_dns;
  // With peers_dns: "ip:port" of the one DNS server to ask (no search
  // domains, no hosts file); empty: the system resolver (getaddrinfo).
  std::string peers_dns_server;
};

class Node {
 public:
  // Opens the store, then starts the merger and the HTTP server. On
  // success stores the node in *node. On failure everything started is
  // stopped again and the status says what failed (Busy: the data dir is in
  // use; IOError: the port cannot be bound; Corruption: bad data on disk;
  // InvalidArgument: peers_dns or peers_dns_server is malformed).
  static Status Start(const NodeOptions& options, std::unique_ptr<Node>* node);

  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Calls Stop().
  ~Node();

  // The HTTP port actually listened on.
  uint16_t port() const;
  CounterStore* store() const { return store_.get(); }

  // Stops the node as described above; takes about the time owed replies
  // need to go out plus one flush (a pull in progress is abandoned within
  // milliseconds). Returns the store's final flush status. Idempotent.
  Status Stop() EXCLUDES(mu_);

 private:
  Node();

  Mutex mu_;                             // serializes Stop()
  bool closed_ GUARDED_BY(mu_) = false;  // Stop() closed the store once
  // Set by Start() before the node is shared, never reset: read unlocked.
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<CounterStore> store_;
  std::unique_ptr<Merger> merger_;
  std::unique_ptr<MergerView> cluster_view_;  // the Api's view of merger_
  std::unique_ptr<PeerResolver> resolver_;    // with peers_dns only
  std::unique_ptr<Api> api_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_NODE_NODE_H_
