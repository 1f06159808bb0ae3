// The HTTP statuses this server answers with, and their reason phrases:
// one list that the status line (http_server.cc) and the request metrics
// (request_metrics.cc) both read, so the two cannot drift apart. A status
// a route starts to use is added here, in one line.
//
// Constant data and pure functions; safe from any thread.

#ifndef DIST_COUNTER_API_HTTP_STATUS_H_
#define DIST_COUNTER_API_HTTP_STATUS_H_

#include <cstddef>
#include <string_view>

namespace dist_counter {

// One row of the list.
struct HttpStatus {
  int code;
  const char* reason;  // the reason phrase (RFC 9110 section 15)
};

// The number of statuses in the list.
size_t HttpStatusCount();

// The list's row `index` (0 <= index < HttpStatusCount()), in ascending
// order of code.
const HttpStatus& HttpStatusAt(size_t index);

// The index of `code` in the list, or -1 if it is not listed.
int HttpStatusIndex(int code);

// The reason phrase of `code`; empty if it is not listed (a status line
// may carry an empty phrase).
std::string_view ReasonPhrase(int code);

}  // namespace dist_counter

#endif  // DIST_COUNTER_API_HTTP_STATUS_H_
