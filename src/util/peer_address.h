// Peer addresses as written in /config and --actors: "host" or
// "host:port" (port 7777 when omitted). Pure functions; thread-safe.

#ifndef DIST_COUNTER_UTIL_PEER_ADDRESS_H_
#define DIST_COUNTER_UTIL_PEER_ADDRESS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace dist_counter {

inline constexpr uint16_t kDefaultPort = 7777;

struct PeerAddress {
  std::string host;  // a name or an IPv4 address
  uint16_t port = kDefaultPort;

  // "host:port", always with the port.
  std::string ToString() const;
};

// Parses `text` into *address. Returns InvalidArgument, leaving *address
// unchanged, for an empty host, a port outside 1..65535, or characters that
// cannot be in a host name (spaces, '/', '@', ...).
Status ParsePeerAddress(std::string_view text, PeerAddress* address);

// Returns what ParsePeerAddress would, discarding the address.
Status ValidatePeerAddress(std::string_view text);

// Parses a peer list given as a JSON array of strings or as a
// comma-separated list ("a:1, b:2"); empty text gives an empty list.
// Returns InvalidArgument, leaving *peers unchanged, if any entry is bad.
// Does not check duplicates or the count (see CheckPeerList).
Status ParsePeerList(std::string_view text, std::vector<std::string>* peers);

// Returns OK if `peers` can be a node's peer list: every entry a valid
// address, at most `max_peers` entries, and no peer twice ("a", "a:7777"
// and "A:7777" are the same peer). Otherwise InvalidArgument naming the
// offending entry or the limit.
Status CheckPeerList(const std::vector<std::string>& peers, size_t max_peers);

}  // namespace dist_counter

#endif  // DIST_COUNTER_UTIL_PEER_ADDRESS_H_
