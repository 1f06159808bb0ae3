// WarningCollector gathers the WARNING (and worse) lines glog writes while
// it lives, for tests that check what a component logs. Thread-safe: glog
// may call send() from any thread while a test reads Lines().

#ifndef DIST_COUNTER_TESTS_TESTING_WARNING_COLLECTOR_H_
#define DIST_COUNTER_TESTS_TESTING_WARNING_COLLECTOR_H_

#include <glog/logging.h>

#include <ctime>
#include <mutex>
#include <string>
#include <vector>

namespace dist_counter {
namespace test {

class WarningCollector : public google::LogSink {
 public:
  WarningCollector() { google::AddLogSink(this); }
  ~WarningCollector() override { google::RemoveLogSink(this); }

  using google::LogSink::send;
  void send(google::LogSeverity severity, const char* /*full_filename*/,
            const char* /*base_filename*/, int /*line*/,
            const std::tm* /*time*/, const char* message,
            size_t message_len) override {
    if (severity < google::GLOG_WARNING) return;
    std::lock_guard<std::mutex> lock(mu_);
    lines_.emplace_back(message, message_len);
  }

  // The lines collected so far, oldest first.
  std::vector<std::string> Lines() const {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

}  // namespace test
}  // namespace dist_counter

#endif  // DIST_COUNTER_TESTS_TESTING_WARNING_COLLECTOR_H_
