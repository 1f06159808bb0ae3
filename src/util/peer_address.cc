#include "util/peer_address.h"

#include <rapidjson/document.h>

#include <cctype>
#include <set>

#include "util/decimal.h"
#include "util/json.h"

namespace dist_counter {

namespace {

bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

}  // namespace

std::string PeerAddress::ToString() const {
  return host + ":" + std::to_string(port);
}

Status ParsePeerAddress(std::string_view text, PeerAddress* address) {
  std::string_view host = text;
  uint16_t port = kDefaultPort;
  const size_t colon = text.rfind(':');
  if (colon != std::string_view::npos) {
    host = text.substr(0, colon);
    uint64_t parsed = 0;
    if (!ParseUint64(text.substr(colon + 1), &parsed).ok() || parsed == 0 ||
        parsed > 65535) {
      return Status::InvalidArgument("bad port in peer address \"" +
                                     std::string(text) + "\"");
    }
    port = static_cast<uint16_t>(parsed);
  }
  if (host.empty() || host.size() > 253) {
    return Status::InvalidArgument("bad host in peer address \"" +
                                   std::string(text) + "\"");
  }
  for (char c : host) {
    if (!IsHostChar(c)) {
      return Status::InvalidArgument("bad host in peer address \"" +
                                     std::string(text) + "\"");
    }
  }
  address->host = std::string(host);
  address->port = port;
  return Status::OK();
}

Status ValidatePeerAddress(std::string_view text) {
  PeerAddress ignored;
  return ParsePeerAddress(text, &ignored);
}

Status ParsePeerList(std::string_view text, std::vector<std::string>* peers) {
  text = Trim(text);
  std::vector<std::string> parsed;
  if (!text.empty() && text.front() == '[') {
    rapidjson::Document doc;
    if (!ParseJson(text, kMaxJsonDepth, &doc).ok() || !doc.IsArray()) {
      return Status::InvalidArgument("peer list is not a JSON array");
    }
    for (const auto& item : doc.GetArray()) {
      if (!item.IsString()) {
        return Status::InvalidArgument("peer list holds a non-string");
      }
      parsed.emplace_back(item.GetString(), item.GetStringLength());
    }
  } else {
    while (!text.empty()) {
      const size_t comma = text.find(',');
      std::string_view item = Trim(text.substr(0, comma));
      if (!item.empty()) parsed.emplace_back(item);
      if (comma == std::string_view::npos) break;
      text.remove_prefix(comma + 1);
    }
  }
  for (const std::string& peer : parsed) {
    Status s = ValidatePeerAddress(peer);
    if (!s.ok()) return s;
  }
  *peers = std::move(parsed);
  return Status::OK();
}

Status CheckPeerList(const std::vector<std::string>& peers, size_t max_peers) {
  if (peers.size() > max_peers) {
    return Status::InvalidArgument(
        "too many peers: " + std::to_string(peers.size()) + ", at most " +
        std::to_string(max_peers) + " (--max_peers)");
  }
  std::set<std::string> seen;
  for (const std::string& peer : peers) {
    PeerAddress address;
    Status s = ParsePeerAddress(peer, &address);
    if (!s.ok()) return s;
    for (char& c : address.host) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (!seen.insert(address.ToString()).second) {
      return Status::InvalidArgument("peer \"" + peer + "\" is listed twice");
    }
  }
  return Status::OK();
}

}  // namespace dist_counter
