// PeerClient talks to one peer node over its HTTP port (libcurl): it pulls
// the peer's changes since a cursor (GET /internal/changes) and one
// counter's live state (GET /internal/counter/<name>). CounterFanout asks
// several peers for one counter at once, from the calling thread.
//
// Every request is bounded: a connect timeout and a total timeout (a peer
// that accepts the connection and then hangs, e.g. under SIGSTOP, costs at
// most the total timeout), and a cap on the reply size. Everything a peer
// sends is validated strictly before any of it is returned: a reply whose
// framing is bad (bad JSON, truncated or deeply nested, wrong envelope
// types, inconsistent cursors, more counters than asked for) is Corruption
// and none of it is returned; a malformed counter entry in a page (bad
// name, state or actor id) is left out and named in ChangesPage::rejected.
// The protocol itself (targets, envelopes, decoders) is proto/wire.h.
// Transport failures (refused, timed out, reset, HTTP 5xx) are Unavailable;
// so is a 401 (the peer refused our token, or asked for one we lack).
//
// With options.auth_token set, every request carries
// "Authorization: Bearer <token>". The token is never logged nor put in a
// Status message.
//
// Connections are kept alive between requests (one curl handle per client).
// InitPeerClients() must have been called before the first client is made.
// With options.transport set, requests go through it instead of libcurl
// (cluster/peer_transport.h); status checks and decoding stay the same.
//
// Not thread-safe: use one PeerClient (or CounterFanout) per thread at a
// time. Distinct objects may be used from distinct threads concurrently.

#ifndef DIST_COUNTER_CLUSTER_PEER_CLIENT_H_
#define DIST_COUNTER_CLUSTER_PEER_CLIENT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cluster/peer_transport.h"
#include "crdt/pn_counter.h"
#include "proto/wire.h"
#include "util/status.h"

namespace dist_counter {

struct PeerClientOptions {
  int connect_timeout_ms = 500;  // TCP connect
  int timeout_ms = 500;          // the whole request, connect included
  // Changes pages are asked for in about this many bytes; see proto/wire.h.
  size_t page_bytes = kDefaultPageBytes;
  // Larger replies are Corruption, refused as soon as they exceed it (or
  // announce a larger Content-Length). Twice a page plus room for the
  // envelope: a peer sizes its pages by their states and names, so a page
  // with heavily escaped names may exceed page_bytes.
  size_t max_reply_bytes = 2 * kDefaultPageBytes + kReplySlackBytes;
  // Counter states beyond these are left out of a page (and listed in
  // ChangesPage::rejected) or, for FetchCounter, make the reply Corruption.
  WireLimits limits;
  // When not null and set to true, a transfer in progress is abandoned
  // (Unavailable) within a few milliseconds. Not owned; must outlive the
  // client.
  const std::atomic<bool>* abort = nullptr;
  // Sent as "Authorization: Bearer <auth_token>" on every request when not
  // empty: peers that require a token (--auth_token_file) take it.
  std::string auth_token;
  // Carries the requests when not null (a simulated network); null: HTTP
  // over libcurl. Not owned; must outlive the client.
  PeerTransport* transport = nullptr;
};

// Initializes libcurl for the whole process. Call once at startup, before
// any thread is started and before the first PeerClient is made. Returns
// false if libcurl could not initialize.
bool InitPeerClients();

class PeerClient {
 public:
  // `address` is "host:port" (or "host", port 7777).
  PeerClient(const std::string& address, const PeerClientOptions& options);
  PeerClient(const PeerClient&) = delete;
  PeerClient& operator=(const PeerClient&) = delete;
  ~PeerClient();

  const std::string& address() const { return address_; }

  // Asks for at most `limit` (>= 1) changes after `cursor`, in a page of
  // about options.page_bytes. On success fills *page (replacing it) and
  // returns OK; counters beyond options.limits are only named, in
  // page->rejected. On failure returns
  // Unavailable (transport, timeout, abort, HTTP 5xx) or Corruption (any
  // other reply that is not a valid page) and leaves *page unchanged.
  Status FetchChanges(const ChangesCursor& cursor, size_t limit,
                      ChangesPage* page);

  // Asks for counter `name`'s state. On success stores who answered in
  // *node and the state in *state (empty if the peer has no such counter),
  // and if `found` is not null whether the peer has it in *found, and
  // returns OK. Failures as for FetchChanges(); outputs unchanged.
  Status FetchCounter(const std::string& name, PeerIdentity* node,
                      PnCounter* state, bool* found = nullptr);

  // Bytes of reply bodies received by this client so far (valid or not).
  uint64_t bytes_received() const { return bytes_received_; }

 private:
  friend class CounterFanout;

  // Points the curl handle at `path_and_query` and clears the buffers.
  void Prepare(const std::string& path_and_query);
  // Turns the finished transfer (`code` is a CURLcode) into a status and,
  // if OK, leaves the body in body_.
  Status Finish(int code);
  // The status of a reply that came with HTTP status `http_status` and,
  // if OK, the body in body_.
  Status CheckReply(long http_status);
  Status Perform(const std::string& path_and_query);
  // Perform() through options_.transport.
  Status PerformOnTransport(const std::string& path_and_query);

  static size_t OnBody(char* data, size_t size, size_t count, void* self);
  static size_t OnHeader(char* data, size_t size, size_t count, void* self);

  const std::string address_;
  const PeerClientOptions options_;
  void* curl_ = nullptr;  // CURL*, owned
  // curl_slist* of the request headers (Authorization), owned; may be null.
  void* headers_ = nullptr;
  std::string url_;
  std::string body_;
  bool body_too_large_ = false;
  bool has_crc_ = false;
  bool crc_unreadable_ = false;
  uint32_t crc_ = 0;  // the X-SFN-CRC32 header, when has_crc_
  uint64_t bytes_received_ = 0;
};

// CounterFanout fetches one counter from several peers in parallel from the
// calling thread (curl multi), keeping one keep-alive connection per peer
// between calls. Not thread-safe (but Wakeup()); keep one per concurrent
// caller.
class CounterFanout {
 public:
  // When options.abort is set and becomes true, FetchCounter() gives up
  // every transfer still running (Unavailable) once it notices: at its next
  // poll, at most 50 ms later, or at once after Wakeup().
  explicit CounterFanout(const PeerClientOptions& options);
  CounterFanout(const CounterFanout&) = delete;
  CounterFanout& operator=(const CounterFanout&) = delete;
  ~CounterFanout();

  struct Result {
    std::string address;
    Status status;      // as PeerClient::FetchCounter's
    PeerIdentity node;  // valid if status.ok()
    PnCounter state;    // valid if status.ok()
    bool found = true;  // valid if status.ok(): the peer has the counter
  };

  // Asks every peer in `addresses` for counter `name` at once and returns
  // when all answered or failed, within about the total timeout (with
  // options.transport: one after the other, each bounded). Replaces
  // *results with one Result per address, in the same order. Forgets the
  // connections of peers not in `addresses`.
  void FetchCounter(const std::vector<std::string>& addresses,
                    const std::string& name, std::vector<Result>* results);

  // Makes a FetchCounter() in progress (or the next one's first poll) look
  // at options.abort now. Thread-safe: meant to be called from another
  // thread right after setting the abort flag.
  void Wakeup();

 private:
  const std::atomic<bool>* const abort_;  // options.abort; may be null
  const PeerClientOptions options_;       // without abort, for the clients
  void* multi_ = nullptr;  // CURLM*, owned; holds the connection cache
  std::map<std::string, std::unique_ptr<PeerClient>> clients_;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_CLUSTER_PEER_CLIENT_H_
