// The bytes of an HTTP/1.1 response: an ApiReply with the Content-Type,
// X-SFN-CRC32 and Connection headers every reply carries, then the reply's
// own headers and Content-Length. The one place a response is written.
// Stateless functions, safe from any thread.

#ifndef DIST_COUNTER_API_HTTP_REPLY_H_
#define DIST_COUNTER_API_HTTP_REPLY_H_

#include <string>

namespace dist_counter {

struct ApiReply;

// The bytes of `reply` on the wire. "Connection: Keep-Alive" if
// `keep_alive`, else "Connection: Close". A 204 and a reply to HEAD (`head`)
// carry no body (one would be read as the start of the next reply on a
// kept-alive connection); a 204 has no Content-Type or Content-Length
// either.
std::string SerializeReply(const ApiReply& reply, bool keep_alive, bool head);

// Our JSON error {"message":...,"type":...} with `status`, as a reply that
// closes the connection.
std::string SerializeError(int status, const char* type,
                           const std::string& message);

}  // namespace dist_counter

#endif  // DIST_COUNTER_API_HTTP_REPLY_H_
