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
Status ParsePeerList(std::string_view text, std::vector<std::string>* peers);

}  // namespace dist_counter

#endif  // DIST_COUNTER_UTIL_PEER_ADDRESS_H_
