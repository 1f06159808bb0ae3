// Status is the result of an operation that can fail: OK, or a code and a
// message. Modules return a Status instead of throwing; only api/ turns a
// Status into an HTTP reply.
//
// A Status is a small value type: copy it freely. Not safe to modify one
// object from several threads at once (like an int).

#ifndef DIST_COUNTER_UTIL_STATUS_H_
#define DIST_COUNTER_UTIL_STATUS_H_

#include <string>
#include <string_view>

namespace dist_counter {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,
    kInvalidArgument,     // the caller's input is wrong (bad value, overflow)
    kCorruption,          // stored or received data failed to decode
    kIOError,             // the disk or the OS failed
    kUnavailable,         // a peer or resource cannot be reached now
    kBusy,                // a resource is held by someone else (a DB lock)
    kStorageUnavailable,  // the store cannot persist now (full disk, I/O
                          // error, no descriptors, data dir gone): writes
                          // are refused until it recovers, reads go on
    kResourceExhausted,   // a configured quota is reached (e.g. counters)
  };

  // Creates an OK status.
  Status() = default;

  static Status OK() { return Status(); }
  static Status NotFound(std::string_view msg) {
    return Status(Code::kNotFound, msg);
  }
  static Status InvalidArgument(std::string_view msg) {
    return Status(Code::kInvalidArgument, msg);
  }
  static Status Corruption(std::string_view msg) {
    return Status(Code::kCorruption, msg);
  }
  static Status IOError(std::string_view msg) {
    return Status(Code::kIOError, msg);
  }
  static Status Unavailable(std::string_view msg) {
    return Status(Code::kUnavailable, msg);
  }
  static Status Busy(std::string_view msg) { return Status(Code::kBusy, msg); }
  static Status StorageUnavailable(std::string_view msg) {
    return Status(Code::kStorageUnavailable, msg);
  }
  static Status ResourceExhausted(std::string_view msg) {
    return Status(Code::kResourceExhausted, msg);
  }

  bool ok() const { return code_ == Code::kOk; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsIOError() const { return code_ == Code::kIOError; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }
  bool IsBusy() const { return code_ == Code::kBusy; }
  bool IsStorageUnavailable() const {
    return code_ == Code::kStorageUnavailable;
  }
  bool IsResourceExhausted() const { return code_ == Code::kResourceExhausted; }

  Code code() const { return code_; }
  // The message alone, without the code's name.
  const std::string& message() const { return message_; }
  // "OK", or the code's name, ": " and the message.
  std::string ToString() const;

 private:
  Status(Code code, std::string_view msg) : code_(code), message_(msg) {}

  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_UTIL_STATUS_H_
