// WorkQueue runs tasks on a fixed set of threads, with a bounded backlog.
// It exists so that slow, blocking work (a /consistent_value read waiting on
// peers) never occupies the HTTP server's few threads.
//
// Each task may come with a `cancel` function: Stop() runs it instead of the
// task if the task has not started yet, so that whoever waits on the task
// (a client owed a reply) is answered at once rather than after the work.
// For every task TrySubmit() accepted, either `task` runs or (if Stop()
// found it queued) `cancel` does, once; never both. Neither may throw.
//
// Thread-safe: TrySubmit() and Stop() may be called from any thread;
// TrySubmit() also from a task (Stop() not: it would wait for itself).

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

  // Calls Stop().
  ~WorkQueue();

  // Queues `task` and returns true, or returns false (dropping `task` and
  // `cancel`, neither of which runs) if the backlog is full or Stop() was
  // called. `cancel` (may be empty) runs instead of `task` if Stop() finds
  // the task still queued.
  bool TrySubmit(std::function<void()> task,
                 std::function<void()> cancel = nullptr);

  // Refuses new tasks, runs the `cancel` of every task still queued (on
  // the calling thread, in queue order) without running the tasks, waits
  // for the tasks already running to return, and joins the threads. Returns
  // once no task or cancel of this queue runs any more. Idempotent; a
  // second concurrent call also waits for the first to finish.
  void Stop();

 private:
  struct Item {
    std::function<void()> task;
    std::function<void()> cancel;
  };

  void Run();

  const size_t max_queued_;
  std::mutex mu_;  // guards tasks_ and stopping_
  std::condition_variable cv_;
  std::deque<Item> tasks_;
  bool stopping_ = false;
  std::mutex stop_mu_;  // serializes Stop(); guards threads_ after start
  std::vector<std::thread> threads_;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_UTIL_WORK_QUEUE_H_
