// Fuzzes CheckJsonDepth and ParseJson (util/json.h): the depth pre-scan
// must agree with the depth of what the parser builds, and whatever
// ParseJson accepts holds only well-formed UTF-8 strings.

#include <rapidjson/document.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "util/json.h"
#include "util/utf8.h"

namespace dist_counter {
namespace {

constexpr int kNoBound = 1 << 30;

bool IsValidString(const rapidjson::Value& value) {
  return IsValidUtf8(
      std::string_view(value.GetString(), value.GetStringLength()));
}

// Returns the nesting depth of `root` and checks its strings, without
// recursion (the input may nest deeply).
int DepthAndCheckStrings(const rapidjson::Value& root) {
  int deepest = 0;
  std::vector<std::pair<const rapidjson::Value*, int>> stack = {{&root, 0}};
  while (!stack.empty()) {
    const auto [value, depth] = stack.back();
    stack.pop_back();
    if (value->IsString()) FUZZ_CHECK(IsValidString(*value));
    if (value->IsArray()) {
      deepest = std::max(deepest, depth + 1);
      for (const auto& item : value->GetArray()) {
        stack.push_back({&item, depth + 1});
      }
    } else if (value->IsObject()) {
      deepest = std::max(deepest, depth + 1);
      for (const auto& member : value->GetObject()) {
        FUZZ_CHECK(IsValidString(member.name));
        stack.push_back({&member.value, depth + 1});
      }
    }
  }
  return deepest;
}

}  // namespace
}  // namespace dist_counter

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using dist_counter::CheckJsonDepth;
  using dist_counter::kMaxJsonDepth;
  using dist_counter::ParseJson;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  rapidjson::Document doc;
  const bool parsed = ParseJson(text, dist_counter::kNoBound, &doc).ok();
  rapidjson::Document bounded;
  const bool parsed_bounded = ParseJson(text, kMaxJsonDepth, &bounded).ok();
  if (!parsed) {
    FUZZ_CHECK(!parsed_bounded);
    return 0;
  }
  const int depth = dist_counter::DepthAndCheckStrings(doc);
  FUZZ_CHECK(CheckJsonDepth(text, depth).ok());
  FUZZ_CHECK(depth == 0 || !CheckJsonDepth(text, depth - 1).ok());
  FUZZ_CHECK(parsed_bounded == (depth <= kMaxJsonDepth));
  return 0;
}
