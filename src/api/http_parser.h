// An incremental HTTP/1.1 request parser (RFC 9112) for the HTTP server:
// it reads one request at a time from the start of a connection's input,
// which may hold less than a request (the caller waits for more bytes and
// parses again) or more (pipelined requests: the caller drops the bytes of
// the one parsed and parses again).
//
// What it accepts: an origin-form request line ("GET /path?query HTTP/1.1",
// HTTP/1.0 or HTTP/1.1, one of the methods of RFC 9110), header fields
// with CRLF line ends, and a body delimited by Content-Length. What it
// refuses, with the status a server should answer (every refusal ends the
// connection, since the request's end is unknown):
//   400  a malformed request line, header field, or Content-Length; both
//        Content-Length and Transfer-Encoding (request smuggling);
//        Authorization given twice
//        Idempotency-Key given twice
//   411  Transfer-Encoding (chunked bodies are not supported: the Api's
//        bodies are small and every client we know sends a length)
//   413  a Content-Length over the body limit
//   431  a request line and headers over the head limit
//   501  a method that is not an RFC 9110 method
//   505  an HTTP version other than 1.0 and 1.1
//
// Header names are compared case-insensitively in place, without copies.
// Pure functions; safe from any thread. No Pistache here: it is unit
// tested and fuzzed alone (fuzz/http_request_fuzzer.cc).

#ifndef DIST_COUNTER_API_HTTP_PARSER_H_
#define DIST_COUNTER_API_HTTP_PARSER_H_

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

namespace dist_counter {

struct HttpParseLimits {
  size_t max_head_bytes = 16 * 1024;  // request line and headers, with CRLFs
  size_t max_body_bytes = 64 * 1024;  // Content-Length
};

enum class HttpParseState {
  kIncomplete,  // more bytes are needed (see head_complete)
  kComplete,    // one request was read: its fields are set
  kError,       // the input is not a request we serve: see error_*
};

// One request as read from the input. The views point into the parsed
// input and are valid while it is.
struct HttpRequestHead {
  std::string_view method;  // "GET", "POST", ...
  std::string_view path;    // the target up to '?', still percent-encoded
  std::string_view query;   // after '?' (without it); empty if none
  int minor_version = 1;    // HTTP/1.<minor_version>
  // Whether the connection stays open after the reply: HTTP/1.1 unless
  // "Connection: close", HTTP/1.0 only with "Connection: keep-alive".
  bool keep_alive = true;
  bool expect_continue = false;      // "Expect: 100-continue"
  std::string_view authorization;    // the Authorization value; empty if none
  bool has_idempotency_key = false;  // an Idempotency-Key header was sent
  std::string_view idempotency_key;  // its value
  size_t content_length = 0;
  std::string_view body;  // content_length bytes, once kComplete
  size_t size = 0;        // bytes of the whole request, once kComplete
  // With kIncomplete: the head was read and only body bytes are missing.
  bool head_complete = false;
  // With kError: the status to answer, the JSON error type and a message.
  int error_status = 0;
  const char* error_type = "";
  const char* error_message = "";
};

// Parses the request at the start of `input` into *out (reset first).
HttpParseState ParseHttpRequest(std::string_view input,
                                const HttpParseLimits& limits,
                                HttpRequestHead* out);

// Decodes a query string ("a=1&b=x%20y") into *params: names and values
// percent-decoded, '+' as a space; a part without '=' is a name with an
// empty value; a part whose escapes are malformed is kept as written; of
// a name given twice the last value wins.
void DecodeQuery(std::string_view query,
                 std::map<std::string, std::string>* params);

// True if `text` equals `lower` ignoring ASCII case; `lower` must be
// lowercase.
bool EqualsIgnoreCase(std::string_view text, std::string_view lower);

}  // namespace dist_counter

#endif  // DIST_COUNTER_API_HTTP_PARSER_H_
