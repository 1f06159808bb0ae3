// FakePeer is a tiny HTTP server on 127.0.0.1 for cluster tests: a handler
// decides, per request, which raw bytes go back, so a test can play a peer
// that sends garbage, truncated or huge replies, hangs, or closes.
//
// Start() listens on a free port (or a given one) and serves from background
// threads (one per connection) until Stop() or destruction. Requests on one
// connection are answered in order (keep-alive) unless a reply closes it.
//
// Thread-safe: the handler runs on the server's threads, one at a time per
// connection, possibly concurrently across connections.

#ifndef DIST_COUNTER_TESTS_CLUSTER_FAKE_PEER_H_
#define DIST_COUNTER_TESTS_CLUSTER_FAKE_PEER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace dist_counter {
namespace test {

struct FakeReply {
  std::string raw;          // bytes sent as they are
  size_t filler_bytes = 0;  // then this many 'x' bytes (a huge body)
  bool hang = false;        // then keep the connection open, silent
  bool close = false;       // then close the connection
};

// A complete HTTP/1.1 reply with `body`, Content-Length and
// Content-Type: application/json, keeping the connection alive.
std::string HttpReply(int status, const std::string& body,
                      const std::string& extra_headers = "");
// FakeReply{HttpReply(200, body)}.
FakeReply JsonReply(const std::string& body);

class FakePeer {
 public:
  // Gets the request's target ("/internal/changes?..."); returns the reply.
  using Handler = std::function<FakeReply(const std::string& target)>;

  explicit FakePeer(Handler handler);
  FakePeer(const FakePeer&) = delete;
  FakePeer& operator=(const FakePeer&) = delete;
  ~FakePeer();  // Stop()

  // Listens on 127.0.0.1:`port` (0: a free one). Returns false on failure.
  bool Start(uint16_t port = 0);
  // Closes every connection and joins the threads. Idempotent.
  void Stop();

  uint16_t port() const { return port_; }
  std::string Address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Connections accepted and requests read so far.
  int connections() const { return connections_; }
  int requests() const { return requests_; }

 private:
  void AcceptLoop();
  void Serve(int fd);

  const Handler handler_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::thread accept_thread_;

  std::mutex mu_;               // guards fds_, threads_; with cv_
  std::condition_variable cv_;  // signalled at Stop() for hanging replies
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
};

}  // namespace test
}  // namespace dist_counter

#endif  // DIST_COUNTER_TESTS_CLUSTER_FAKE_PEER_H_
