// Token authentication of the API. A node given a token (--auth_token_file)
// answers a request on any route but /ping only if it carries
// "Authorization: Bearer <token>"; the Api asks its Authenticator once,
// before dispatch, and answers 401 otherwise (routes.h).
//
// Protected mode, for a node without a token: the routes that change what
// the node is (POST /config re-points its peers, /admin/* backs it up) are
// answered only to clients on a loopback address (IsLoopbackClient); the
// Api answers others 403 (routes.h). Reads and increments stay open, as
// they were.
//
// The token is compared in constant time (ConstantTimeEquals): the time
// depends only on the length of the credential the client presented, so it
// tells nothing of the token, not even the token's length.
//
// Neither the token nor a presented credential is ever logged.

#ifndef DIST_COUNTER_API_AUTH_H_
#define DIST_COUNTER_API_AUTH_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "util/mutex.h"
#include "util/status.h"
#include "util/thread_annotations.h"

namespace dist_counter {

// Returns true iff `presented` equals `secret`. Reads every byte of
// `presented` whatever they hold, with no branch on the bytes of either
// string, so the time taken depends only on presented.size().
bool ConstantTimeEquals(std::string_view secret, std::string_view presented);

// Reads a token from file `path`: its content without trailing whitespace
// (so the usual final newline, or CR LF, goes). On success stores it in
// *token, appends to *warnings what deserves a WARNING (a file others may
// read or write, or its group write; a token shorter than 16 bytes) and
// returns OK. Returns InvalidArgument, with *token unchanged, if the file is
// missing, unreadable, not a regular file, larger than 4 KiB, empty (after
// trimming), or holds a byte that cannot travel in an HTTP header as is
// (anything but visible ASCII, 0x21-0x7e). Messages name the file, never
// the token.
Status LoadAuthToken(const std::string& path, std::string* token,
                     std::vector<std::string>* warnings);

// True if `ip`, a client's address as the server saw it ("127.0.0.1",
// "::1", "::ffff:127.0.0.1", optionally in brackets), is a loopback address:
// 127.0.0.0/8, ::1, or 127.0.0.0/8 mapped into IPv6. False for any other
// address and for anything that is not an IP address ("", "localhost").
bool IsLoopbackClient(std::string_view ip);

// How a request's Authorization header compares with the token.
enum class AuthResult {
  kOk,          // "Bearer <the token>"
  kMissing,     // no Authorization header, or an empty one
  kNotBearer,   // another scheme, e.g. "Basic ..."
  kWrongToken,  // "Bearer" with another token, or none
};

// A short explanation of `result` for replies and logs, e.g. "wrong token"
// (never the token itself).
const char* AuthResultMessage(AuthResult result);

// A label value for metrics: "ok", "missing", "not_bearer", "wrong_token".
const char* AuthResultLabel(AuthResult result);

struct AuthOptions {
  // The token. Empty: no authentication, every request is allowed (the
  // Api then makes no Authenticator at all).
  std::string token;
  // One source's refusals are logged at WARNING at most once per interval;
  // the next line says how many were left out meanwhile.
  int64_t log_interval_ms = 10000;
  // At most this many sources are remembered for that. Past it, sources
  // whose last line is older than the interval are forgotten; if all are
  // recent, further sources share one rate limit.
  size_t max_tracked_sources = 1024;
  // A monotonic clock in milliseconds; null: std::chrono::steady_clock.
  // For tests.
  std::function<int64_t()> now_ms;
};

// Holds the token, checks requests' Authorization headers against it and
// logs refusals with a per-source rate limit in bounded memory.
// Thread-safe: Check() is const and lock-free; LogRefusal() takes mu_, a
// leaf lock (glog is called under it, which takes only its own locks).
class Authenticator {
 public:
  // `options.token` must not be empty.
  explicit Authenticator(const AuthOptions& options);
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // Compares `authorization`, the value of the request's Authorization
  // header ("" if it had none), with the token. The scheme is matched
  // without regard to case ("bearer" works), spaces around the credential
  // are ignored, the credential itself is compared in constant time.
  AuthResult Check(std::string_view authorization) const;

  // Logs at WARNING that `request_line` (e.g. "GET /counters") from
  // `source` (the client's IP, "" if unknown) was refused for `result`,
  // unless a line for this source was logged less than log_interval_ms ago:
  // then only counts it, for the next line to report.
  void LogRefusal(const std::string& source, const std::string& request_line,
                  AuthResult result) EXCLUDES(mu_);

  // Sources remembered right now (at most options.max_tracked_sources).
  size_t TEST_TrackedSources() const EXCLUDES(mu_);

 private:
  // One source's rate limit.
  struct SourceLog {
    bool logged = false;      // a line was logged for it
    int64_t last_log_ms = 0;  // when, if `logged`
    uint64_t left_out = 0;    // refusals not logged since that line
  };

  int64_t NowMs() const;

  const AuthOptions options_;
  mutable Mutex mu_;
  std::unordered_map<std::string, SourceLog> sources_ GUARDED_BY(mu_);
  // Shared by the sources that did not fit in sources_.
  SourceLog overflow_ GUARDED_BY(mu_);
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_API_AUTH_H_
