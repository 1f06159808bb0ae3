#include "api/http_reply.h"

#include <charconv>
#include <cstdint>

#include "api/http_status.h"
#include "api/routes.h"
#include "util/crc32.h"

namespace dist_counter {
namespace {

void AppendNumber(uint64_t n, std::string* out) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof(digits), n).ptr;
  out->append(digits, static_cast<size_t>(end - digits));
}

}  // namespace

std::string SerializeReply(const ApiReply& reply, bool keep_alive, bool head) {
  const bool no_content = reply.status == 204;
  const bool with_body = !no_content && !head;
  std::string out;
  out.reserve(160 + reply.content_type.size() +
              (with_body ? reply.body.size() : 0));
  out += "HTTP/1.1 ";
  AppendNumber(static_cast<uint64_t>(reply.status), &out);
  out += ' ';
  out += ReasonPhrase(reply.status);
  if (!no_content) {
    out += "\r\nContent-Type: ";
    out += reply.content_type;
  }
  out += "\r\nX-SFN-CRC32: ";
  AppendNumber(Crc32(reply.body), &out);
  out += keep_alive ? "\r\nConnection: Keep-Alive" : "\r\nConnection: Close";
  for (const auto& header : reply.headers) {
    out += "\r\n";
    out += header.first;
    out += ": ";
    out += header.second;
  }
  if (!no_content) {
    out += "\r\nContent-Length: ";
    AppendNumber(reply.body.size(), &out);
  }
  out += "\r\n\r\n";
  if (with_body) out += reply.body;
  return out;
}

std::string SerializeError(int status, const char* type,
                           const std::string& message) {
  ApiReply reply;
  ReplyError(status, type, message, &reply);
  return SerializeReply(reply, /*keep_alive=*/false, /*head=*/false);
}

}  // namespace dist_counter
