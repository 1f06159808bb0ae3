// Fuzzes ParseBatchBody (api/request_parser.h), the POST /counters body:
// what it accepts is exactly the JSON object's members, in order, each a
// valid name with an int64 delta, no name twice.

#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "api/request_parser.h"
#include "fuzz/fuzz_check.h"
#include "util/json.h"

namespace dist_counter {
namespace {

void FuzzBatchBody(std::string_view body) {
  CounterDeltas deltas = {{"unchanged", 1}};
  if (!ParseBatchBody(body, &deltas).ok()) {
    FUZZ_CHECK(deltas.size() == 1 && deltas[0].first == "unchanged");
    return;
  }
  rapidjson::Document doc;
  FUZZ_CHECK(ParseJson(body, kMaxJsonDepth, &doc).ok());
  FUZZ_CHECK(doc.IsObject());
  FUZZ_CHECK(doc.MemberCount() == deltas.size());
  std::set<std::string> names;
  size_t i = 0;
  for (const auto& member : doc.GetObject()) {
    const std::string name(member.name.GetString(),
                           member.name.GetStringLength());
    FUZZ_CHECK(deltas[i].first == name);
    FUZZ_CHECK(member.value.IsInt64());
    FUZZ_CHECK(deltas[i].second == member.value.GetInt64());
    FUZZ_CHECK(CheckCounterName(name).ok());
    FUZZ_CHECK(names.insert(name).second);
    ++i;
  }
}

}  // namespace
}  // namespace dist_counter

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dist_counter::FuzzBatchBody(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
