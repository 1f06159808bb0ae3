#include "util/status.h"

namespace dist_counter {

std::string Status::ToString() const {
  const char* name = "OK";
  switch (code_) {
    case Code::kOk:
      return "OK";
    case Code::kNotFound:
      name = "NotFound";
      break;
    case Code::kInvalidArgument:
      name = "InvalidArgument";
      break;
    case Code::kCorruption:
      name = "Corruption";
      break;
    case Code::kIOError:
      name = "IOError";
      break;
    case Code::kUnavailable:
      name = "Unavailable";
      break;
    case Code::kBusy:
      name = "Busy";
      break;
    case Code::kStorageUnavailable:
      name = "StorageUnavailable";
      break;
    case Code::kResourceExhausted:
      name = "ResourceExhausted";
      break;
  }
  return std::string(name) + ": " + message_;
}

}  // namespace dist_counter
