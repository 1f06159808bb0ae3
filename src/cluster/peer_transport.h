// PeerTransport carries one request of the peer protocol (proto/wire.h) to
// a peer and brings its reply back: "GET this target from this peer,
// bounded". PeerClient speaks HTTP over libcurl itself when given no
// transport (production); a transport given in PeerClientOptions replaces
// only the carrying. The client still checks the HTTP status and decodes
// the body, so whatever carries the bytes, the same checks run.
//
// A simulation (tests/sim/) gives each node a transport that hands the
// request to another in-process node's Api and returns its reply, or a
// failure, as its network model decides.
//
// Thread safety is the implementation's to state; PeerClient calls Get()
// from the thread that uses the client.

#ifndef DIST_COUNTER_CLUSTER_PEER_TRANSPORT_H_
#define DIST_COUNTER_CLUSTER_PEER_TRANSPORT_H_

#include <cstddef>
#include <string>

#include "util/status.h"

namespace dist_counter {

// What came back for one request.
struct PeerReply {
  int http_status = 0;  // e.g. 200
  std::string body;
};

class PeerTransport {
 public:
  virtual ~PeerTransport() = default;

  // Sends "GET `target`" (a path and query, e.g. from ChangesTarget()) to
  // peer `address` ("host:port") and waits for the reply, at most
  // `timeout_ms`. On a reply fills *reply (replacing it) and returns OK,
  // whatever its HTTP status. Returns Unavailable when no reply came (the
  // peer is down or unreachable, timed out, the connection dropped) and
  // Corruption when the reply was not a valid HTTP reply, was larger than
  // `max_reply_bytes` or failed its checksum; *reply is then unspecified.
  virtual Status Get(const std::string& address, const std::string& target,
                     int timeout_ms, size_t max_reply_bytes,
                     PeerReply* reply) = 0;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_CLUSTER_PEER_TRANSPORT_H_
