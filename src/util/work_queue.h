// WorkQueue runs tasks on a fixed set of threads, with a bounded backlog.
// It exists so that slow, blocking work (a /consistent_value read waiting on
// peers) never occupies the HTTP server's few threads.
//
// The destructor runs every task already accepted, then joins the threads.
// Thread-safe: TrySubmit() may be called from any thread, also from a task.

#ifndef DIST_COUNTER_UTIL_WORK_QUEUE_H_
#define DIST_COUNTER_UTIL_WORK_QUEUE_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dist_counter {

class WorkQueue {
 public:
  // Starts `threads` threads (at least 1). At most `max_queued` tasks wait
  // for a thread at any time.
  WorkQueue(int threads, size_t max_queued);
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;
  ~WorkQueue();

  // Queues `task` and returns true, or returns false (dropping `task`,
  // which is not run) if the backlog is full or the queue is shutting down.
  bool TrySubmit(std::function<void()> task);

 private:
  void Run();

  const size_t max_queued_;
  std::mutex mu_;  // guards tasks_ and stopping_
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_UTIL_WORK_QUEUE_H_
