// Fuzzes ParseConfigBody (api/request_parser.h), the POST /config body.
// The first byte picks the peer limit (0..15), the rest is the body. What
// it accepts is the "actors" array of the JSON object: valid addresses, no
// more than the limit, no peer twice.

#include <rapidjson/document.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "api/request_parser.h"
#include "fuzz/fuzz_check.h"
#include "util/json.h"
#include "util/peer_address.h"

namespace dist_counter {
namespace {

void FuzzConfigBody(const uint8_t* data, size_t size) {
  if (size == 0) return;
  const size_t max_peers = data[0] % 16;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1,
                              size - 1);
  std::vector<std::string> peers = {"unchanged"};
  if (!ParseConfigBody(body, max_peers, &peers).ok()) {
    FUZZ_CHECK(peers.size() == 1 && peers[0] == "unchanged");
    return;
  }
  FUZZ_CHECK(peers.size() <= max_peers);
  rapidjson::Document doc;
  FUZZ_CHECK(ParseJson(body, kMaxJsonDepth, &doc).ok());
  FUZZ_CHECK(doc.IsObject() && doc.HasMember("actors"));
  const rapidjson::Value& actors = doc["actors"];
  FUZZ_CHECK(actors.IsArray() && actors.Size() == peers.size());
  std::set<std::string> seen;
  for (size_t i = 0; i < peers.size(); ++i) {
    FUZZ_CHECK(actors[i].IsString());
    FUZZ_CHECK(peers[i] ==
               std::string(actors[i].GetString(), actors[i].GetStringLength()));
    PeerAddress address;
    FUZZ_CHECK(ParsePeerAddress(peers[i], &address).ok());
    std::string key = address.ToString();
    for (char& c : key) c = static_cast<char>(std::tolower(c));
    FUZZ_CHECK(seen.insert(key).second);
  }
}

}  // namespace
}  // namespace dist_counter

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dist_counter::FuzzConfigBody(data, size);
  return 0;
}
