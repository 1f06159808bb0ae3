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
// Tasks run under none of the queue's locks; a `cancel` runs while Stop()
// holds stop_mu_ (only), so a cancel must not call Stop().
//
// Lock order: stop_mu_ before mu_.

#ifndef DIST_COUNTER_UTIL_WORK_QUEUE_H_
#define DIST_COUNTER_UTIL_WORK_QUEUE_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "util/mutex.h"
#include "util/thread_annotations.h"

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
                 std::function<void()> cancel = nullptr) EXCLUDES(mu_);

  // Refuses new tasks, runs the `cancel` of every task still queued (on
  // the calling thread, in queue order) without running the tasks, waits
  // for the tasks already running to return, and joins the threads. Returns
  // once no task or cancel of this queue runs any more. Idempotent; a
  // second concurrent call also waits for the first to finish.
  void Stop() EXCLUDES(stop_mu_, mu_);

 private:
  struct Item {
    std::function<void()> task;
    std::function<void()> cancel;
  };

  // A worker thread's loop: runs tasks until Stop().
  void Run() EXCLUDES(mu_);
  // Waits for a queued task and moves it to *item, returning true; returns
  // false once Stop() was called.
  bool Take(Item* item) EXCLUDES(mu_);

  const size_t max_queued_;
  Mutex stop_mu_ ACQUIRED_BEFORE(mu_);                     // serializes Stop()
  std::vector<std::thread> threads_ GUARDED_BY(stop_mu_);  // after start
  Mutex mu_;
  CondVar cv_;  // signalled when tasks_ grows or stopping_ is set
  std::deque<Item> tasks_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_UTIL_WORK_QUEUE_H_
