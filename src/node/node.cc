#include "node/node.h"

#include <glog/logging.h>

#include <chrono>
#include <cstdint>

#include "cluster/merger.h"
#include "node/merger_view.h"
#include "util/metrics.h"

namespace dist_counter {

namespace {

int64_t MillisBetween(std::chrono::steady_clock::time_point from,
                      std::chrono::steady_clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from)
      .count();
}

}  // namespace

Node::Node() = default;

Node::~Node() {
  Status s = Stop();
  if (!s.ok()) LOG(ERROR) << "stopping the node: " << s.ToString();
}

Status Node::Start(const NodeOptions& options, std::unique_ptr<Node>* node) {
  std::unique_ptr<Node> started(new Node());
  started->metrics_ = std::make_unique<Metrics>();

  StoreOptions store_options = options.store;
  store_options.metrics = started->metrics_.get();
  Status s = CounterStore::Open(store_options, &started->store_);
  if (!s.ok()) return s;
  if (options.peers_given) {
    s = started->store_->SetPeers(options.peers);
    if (!s.ok()) return s;
  }

  MergerOptions merger_options;
  merger_options.merge_interval_ms = options.merge_interval_ms;
  merger_options.peer_timeout_ms = options.peer_timeout_ms;
  merger_options.pull_threads = options.pull_threads;
  merger_options.max_actors_per_counter = options.max_actors_per_counter;
  merger_options.max_counter_bytes = options.max_counter_bytes;
  merger_options.page_bytes = options.max_page_bytes;
  merger_options.max_round_bytes = options.max_round_bytes;
  merger_options.bind = options.http.bind;
  merger_options.port = options.http.port;
  merger_options.metrics = started->metrics_.get();
  // Peers are asked with the token this node requires: one token per
  // cluster.
  merger_options.auth_token = options.api.auth.token;
  started->merger_ =
      std::make_unique<Merger>(merger_options, started->store_.get());
  started->cluster_view_ = std::make_unique<MergerView>(started->merger_.get());

  started->api_ = std::make_unique<Api>(options.api, started->store_.get(),
                                        started->cluster_view_.get(),
                                        started->metrics_.get());
  HttpServerOptions http_options = options.http;
  http_options.metrics = started->metrics_.get();
  s = HttpServer::Start(http_options, started->api_.get(), &started->server_);
  if (!s.ok()) return s;
  started->merger_->Start(started->server_->port());
  LOG(INFO) << "node " << started->store_->challenge_id() << " (actor "
            << started->store_->actor_id() << ") serving on "
            << options.http.bind << ":" << started->server_->port()
            << ", data in " << options.store.data_dir;
  *node = std::move(started);
  return Status::OK();
}

uint16_t Node::port() const { return server_ ? server_->port() : 0; }

Status Node::Stop() {
  MutexLock lock(&mu_);
  if (!store_) return Status::OK();  // Start() failed before the store
  const auto start = std::chrono::steady_clock::now();
  // Each step ends the last use of what the next one stops. The objects
  // themselves live until ~Node: the store may still call the Api back
  // (a durable increment's reply) while it closes.
  if (server_) server_->StopAccepting();  // new requests get 503
  if (api_) api_->Stop();  // queued consistent reads 503, running ones end
  if (server_) server_->Shutdown();  // owed replies sent, threads joined
  if (merger_) merger_->Stop();      // no pull merges into the store
  const auto drained = std::chrono::steady_clock::now();
  Status s = store_->Close();  // the final synced flush
  if (!closed_) {
    closed_ = true;
    LOG(INFO) << "requests drained in " << MillisBetween(start, drained)
              << " ms, final flush took "
              << MillisBetween(drained, std::chrono::steady_clock::now())
              << " ms";
  }
  return s;
}

}  // namespace dist_counter
