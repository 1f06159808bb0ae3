#include "api/http_parser.h"

#include <cstdint>

#include "util/url.h"

namespace dist_counter {
namespace {

constexpr std::string_view kCrlf = "\r\n";

// RFC 9110 5.6.2 tchar.
bool IsTokenChar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
      (c >= '0' && c <= '9')) {
    return true;
  }
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

// A field value may hold visible characters, spaces, tabs and obs-text.
bool IsFieldValue(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 ? c != '\t' : c == 0x7f) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

bool IsKnownMethod(std::string_view m) {
  static constexpr std::string_view kMethods[] = {
      "GET",     "HEAD",    "POST",  "PUT",  "DELETE",
      "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  for (std::string_view known : kMethods) {
    if (m == known) return true;
  }
  return false;
}

HttpParseState Fail(int status, const char* type, const char* message,
                    HttpRequestHead* out) {
  out->error_status = status;
  out->error_type = type;
  out->error_message = message;
  return HttpParseState::kError;
}

HttpParseState BadRequest(const char* message, HttpRequestHead* out) {
  return Fail(400, "InvalidArgument", message, out);
}

// Parses "HTTP/1.x" into *minor. Returns 0 if good, else the status.
int ParseVersion(std::string_view v, int* minor) {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.' || v[5] < '0' ||
      v[5] > '9' || v[7] < '0' || v[7] > '9') {
    return 400;
  }
  if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) return 505;
  *minor = v[7] - '0';
  return 0;
}

// Parses a request line into *out. Returns kComplete if good.
HttpParseState ParseRequestLine(std::string_view line, HttpRequestHead* out) {
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) {
    return BadRequest("malformed request line", out);
  }
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos ||
      line.find(' ', sp2 + 1) != std::string_view::npos) {
    return BadRequest("malformed request line", out);
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return BadRequest("malformed request method", out);
  const int version_status = ParseVersion(version, &out->minor_version);
  if (version_status == 505) {
    return Fail(505, "HttpVersionNotSupported",
                "only HTTP/1.0 and HTTP/1.1 are served", out);
  }
  if (version_status != 0) return BadRequest("malformed HTTP version", out);
  if (!IsKnownMethod(method)) {
    return Fail(501, "NotImplemented", "unknown request method", out);
  }
  if (target.empty() || target[0] != '/') {
    return BadRequest("request target must be a path", out);
  }
  for (unsigned char c : target) {
    if (c <= 0x20 || c >= 0x7f) {
      return BadRequest("request target holds a byte URLs may not", out);
    }
  }
  out->method = method;
  const size_t q = target.find('?');
  out->path = target.substr(0, q);
  if (q != std::string_view::npos) out->query = target.substr(q + 1);
  out->keep_alive = out->minor_version == 1;
  return HttpParseState::kComplete;
}

// Parses a Content-Length value. Returns false if it is not a decimal
// number of at most 18 digits.
bool ParseLength(std::string_view v, size_t* length) {
  if (v.empty() || v.size() > 18) return false;
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  *length = static_cast<size_t>(n);
  return true;
}

// Applies the tokens of a Connection header to out->keep_alive.
void ApplyConnection(std::string_view value, HttpRequestHead* out) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    const std::string_view token = TrimOws(value.substr(0, comma));
    if (EqualsIgnoreCase(token, "close")) {
      out->keep_alive = false;
    } else if (EqualsIgnoreCase(token, "keep-alive") &&
               out->minor_version == 0) {
      out->keep_alive = true;
    }
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

}  // namespace

bool EqualsIgnoreCase(std::string_view text, std::string_view lower) {
  if (text.size() != lower.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c | 0x20);
    if (c != static_cast<unsigned char>(lower[i])) return false;
  }
  return true;
}

HttpParseState ParseHttpRequest(std::string_view input,
                                const HttpParseLimits& limits,
                                HttpRequestHead* out) {
  *out = HttpRequestHead();
  // RFC 9112 2.2: empty lines before a request line are ignored.
  size_t start = 0;
  while (input.size() - start >= 2 && input.substr(start, 2) == kCrlf) {
    start += 2;
  }
  const size_t head_end = input.find("\r\n\r\n", start);
  if (head_end == std::string_view::npos) {
    // Empty lines before the request line count too: they are buffered.
    if (input.size() > limits.max_head_bytes) {
      return Fail(431, "RequestHeaderFieldsTooLarge",
                  "request line and headers exceed 16 KiB", out);
    }
    // Refuse garbage early rather than wait for a blank line: a request
    // line's first bytes must be a method (a token) and a space.
    for (size_t i = start; i < input.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(input[i]);
      if (c == ' ' && i > start) break;
      if (c == '\r' && i == start && i + 1 == input.size()) break;  // "\r\n"?
      if (!IsTokenChar(c)) return BadRequest("malformed request line", out);
    }
    return HttpParseState::kIncomplete;
  }
  if (head_end + 4 > limits.max_head_bytes) {
    return Fail(431, "RequestHeaderFieldsTooLarge",
                "request line and headers exceed 16 KiB", out);
  }
  std::string_view head = input.substr(start, head_end + 2 - start);
  size_t eol = head.find(kCrlf);
  std::string_view line = head.substr(0, eol);
  if (line.find('\n') != std::string_view::npos ||
      line.find('\r') != std::string_view::npos) {
    return BadRequest("malformed request line", out);
  }
  HttpParseState state = ParseRequestLine(line, out);
  if (state != HttpParseState::kComplete) return state;
  head.remove_prefix(eol + 2);

  bool has_length = false;
  bool has_transfer_encoding = false;
  bool has_authorization = false;
  while (!head.empty()) {
    eol = head.find(kCrlf);
    line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      return BadRequest("malformed header field", out);
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = TrimOws(line.substr(colon + 1));
    // A name must be a token: this refuses obs-fold (a line starting with
    // whitespace) and whitespace before the colon (RFC 9112 5.1).
    if (!IsToken(name) || !IsFieldValue(value)) {
      return BadRequest("malformed header field", out);
    }
    switch (name.size()) {
      case 6:
        if (EqualsIgnoreCase(name, "expect") &&
            EqualsIgnoreCase(value, "100-continue")) {
          out->expect_continue = true;
        }
        break;
      case 10:
        if (EqualsIgnoreCase(name, "connection")) ApplyConnection(value, out);
        break;
      case 13:
        if (EqualsIgnoreCase(name, "authorization")) {
          if (has_authorization) {
            return BadRequest("Authorization given twice", out);
          }
          has_authorization = true;
          out->authorization = value;
        }
        break;
      case 15:
        if (EqualsIgnoreCase(name, "idempotency-key")) {
          if (out->has_idempotency_key) {
            return BadRequest("Idempotency-Key given twice", out);
          }
          out->has_idempotency_key = true;
          out->idempotency_key = value;
        }
        break;
      case 14:
        if (EqualsIgnoreCase(name, "content-length")) {
          size_t length = 0;
          if (!ParseLength(value, &length) ||
              (has_length && length != out->content_length)) {
            return BadRequest("malformed Content-Length", out);
          }
          has_length = true;
          out->content_length = length;
        }
        break;
      case 17:
        if (EqualsIgnoreCase(name, "transfer-encoding")) {
          has_transfer_encoding = true;
        }
        break;
      default:
        break;
    }
  }
  if (has_transfer_encoding) {
    if (has_length) {
      return BadRequest("both Content-Length and Transfer-Encoding", out);
    }
    return Fail(411, "LengthRequired",
                "Transfer-Encoding is not supported; send Content-Length", out);
  }
  if (out->content_length > limits.max_body_bytes) {
    return Fail(413, "PayloadTooLarge", "request body too large", out);
  }
  const size_t body_start = head_end + 4;
  if (input.size() - body_start < out->content_length) {
    out->head_complete = true;
    return HttpParseState::kIncomplete;
  }
  out->body = input.substr(body_start, out->content_length);
  out->size = body_start + out->content_length;
  return HttpParseState::kComplete;
}

void DecodeQuery(std::string_view query,
                 std::map<std::string, std::string>* params) {
  std::string name;
  std::string value;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    const std::string_view raw_name = part.substr(0, eq);
    const std::string_view raw_value =
        eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    if (!PercentDecode(raw_name, /*plus_is_space=*/true, &name).ok()) {
      name.assign(raw_name);
    }
    if (!PercentDecode(raw_value, /*plus_is_space=*/true, &value).ok()) {
      value.assign(raw_value);
    }
    (*params)[name] = value;
  }
}

}  // namespace dist_counter
