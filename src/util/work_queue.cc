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
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || tasks_.size() >= max_queued_) return false;
    tasks_.push_back(Item{std::move(task), std::move(cancel)});
  }
  cv_.notify_one();
  return true;
}

void WorkQueue::Stop() {
  std::lock_guard<std::mutex> stop_lock(stop_mu_);
  std::deque<Item> cancelled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cancelled.swap(tasks_);
  }
  cv_.notify_all();
  for (Item& item : cancelled) {
    if (item.cancel) item.cancel();
  }
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

void WorkQueue::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
    if (stopping_) return;  // Stop() takes what is still queued
    Item item = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    item.task();
    lock.lock();
  }
}

}  // namespace dist_counter
