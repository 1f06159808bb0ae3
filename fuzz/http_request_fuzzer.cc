// Fuzzes ParseHttpRequest and DecodeQuery (api/http_parser.h), which read
// every byte a client sends. Besides not crashing: the input is parsed as
// a pipeline (each complete request consumed, then the next); a complete
// request has a path, a known method and its body at its end, parses the
// same when alone, and no prefix of it is an error (bytes yet to come
// never turn a request that is good so far into a refusal); a refusal
// carries one of the parser's statuses.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "api/http_parser.h"
#include "fuzz/fuzz_check.h"

namespace dist_counter {
namespace {

void CheckComplete(std::string_view input, const HttpParseLimits& limits,
                   const HttpRequestHead& head) {
  FUZZ_CHECK(head.size > 0 && head.size <= input.size());
  FUZZ_CHECK(!head.path.empty() && head.path[0] == '/');
  FUZZ_CHECK(!head.method.empty());
  FUZZ_CHECK(head.content_length <= limits.max_body_bytes);
  FUZZ_CHECK(head.body.size() == head.content_length);
  FUZZ_CHECK(head.body == input.substr(head.size - head.content_length,
                                       head.content_length));
  FUZZ_CHECK(head.minor_version == 0 || head.minor_version == 1);
  const std::string_view alone = input.substr(0, head.size);
  HttpRequestHead again;
  FUZZ_CHECK(ParseHttpRequest(alone, limits, &again) ==
             HttpParseState::kComplete);
  FUZZ_CHECK(again.size == head.size && again.path == head.path &&
             again.keep_alive == head.keep_alive);
  if (head.size <= 512) {
    for (size_t n = 0; n < head.size; ++n) {
      HttpRequestHead prefix;
      FUZZ_CHECK(ParseHttpRequest(alone.substr(0, n), limits, &prefix) ==
                 HttpParseState::kIncomplete);
    }
  }
  std::map<std::string, std::string> params;
  DecodeQuery(head.query, &params);
}

void FuzzHttpRequest(std::string_view input) {
  HttpParseLimits limits;
  limits.max_head_bytes = 1024;  // small, so the fuzzer reaches the bounds
  limits.max_body_bytes = 256;
  while (!input.empty()) {
    HttpRequestHead head;
    const HttpParseState state = ParseHttpRequest(input, limits, &head);
    if (state == HttpParseState::kError) {
      const int s = head.error_status;
      FUZZ_CHECK(s == 400 || s == 411 || s == 413 || s == 431 || s == 501 ||
                 s == 505);
      return;
    }
    if (state == HttpParseState::kIncomplete) {
      FUZZ_CHECK(input.size() <= limits.max_head_bytes + limits.max_body_bytes);
      return;
    }
    CheckComplete(input, limits, head);
    input.remove_prefix(head.size);
  }
}

}  // namespace
}  // namespace dist_counter

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dist_counter::FuzzHttpRequest(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
