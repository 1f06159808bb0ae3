#include "util/work_queue.h"

#include <algorithm>
#include <utility>

namespace dist_counter {

WorkQueue::WorkQueue(int threads, size_t max_queued) : max_queued_(max_queued) {
  for (int i = 0; i < std::max(1, threads); ++i) {
    threads_.emplace_back([this] { Run(); });
  }
}

WorkQueue::~WorkQueue() { Stop(); }

bool WorkQueue::TrySubmit(std::function<void()> task,
                          std::function<void()> cancel) {
  {
    MutexLock lock(&mu_);
    if (stopping_ || tasks_.size() >= max_queued_) return false;
    tasks_.push_back(Item{std::move(task), std::move(cancel)});
  }
  cv_.Signal();
  return true;
}

void WorkQueue::Stop() {
  MutexLock stop_lock(&stop_mu_);
  std::deque<Item> cancelled;
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    cancelled.swap(tasks_);
  }
  cv_.SignalAll();
  for (Item& item : cancelled) {
    if (item.cancel) item.cancel();
  }
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

void WorkQueue::Run() {
  for (;;) {
    Item item;  // its captures go before the next wait, outside mu_
    if (!Take(&item)) return;
    item.task();
  }
}

bool WorkQueue::Take(Item* item) {
  MutexLock lock(&mu_);
  while (!stopping_ && tasks_.empty()) cv_.Wait(&mu_);
  if (stopping_) return false;  // Stop() takes what is still queued
  *item = std::move(tasks_.front());
  tasks_.pop_front();
  return true;
}

}  // namespace dist_counter
