#include "api/http_status.h"

namespace dist_counter {

namespace {

// Ascending by code.
constexpr HttpStatus kStatuses[] = {
    {100, "Continue"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {422, "Unprocessable Content"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {503, "Service Unavailable"},
    {505, "HTTP Version Not Supported"},
    {507, "Insufficient Storage"},
};

constexpr size_t kCount = sizeof(kStatuses) / sizeof(kStatuses[0]);

}  // namespace

size_t HttpStatusCount() { return kCount; }

const HttpStatus& HttpStatusAt(size_t index) { return kStatuses[index]; }

int HttpStatusIndex(int code) {
  for (size_t i = 0; i < kCount; ++i) {
    if (kStatuses[i].code == code) return static_cast<int>(i);
  }
  return -1;
}

std::string_view ReasonPhrase(int code) {
  const int i = HttpStatusIndex(code);
  return i < 0 ? std::string_view() : std::string_view(kStatuses[i].reason);
}

}  // namespace dist_counter
