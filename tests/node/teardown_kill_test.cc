// A kill during teardown: a --durable node under concurrent increments gets
// SIGTERM, then a few milliseconds later SIGKILL (or a second SIGTERM, which
// exits at once), so the process dies somewhere inside its ordered stop
// (draining requests, stopping the merger, the final flush, closing
// RocksDB). The delay varies over rounds on one data dir. After each round
// the node must start again, and every increment that got 204, single or
// batched, must be there.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "testing/http_client.h"
#include "testing/node_process.h"
#include "testing/wait_until.h"

namespace dist_counter {
namespace test {
namespace {

// Counters written by the load: each single-increment thread has its own,
// and the batch thread writes kBatchA and kBatchB in one request.
constexpr int kSingleThreads = 4;
constexpr char kBatchA[] = "batch_a";
constexpr char kBatchB[] = "batch_b";
constexpr char kBatchBody[] = "{\"batch_a\":1,\"batch_b\":2}";

std::string SingleName(int thread) {
  return "single_" + std::to_string(thread);
}

// Per counter: the sum of the increments that got 204 (the least the value
// may be after a restart) and of every increment sent (the most).
struct Totals {
  std::map<std::string, long> acked;
  std::map<std::string, long> sent;
};

// Clients incrementing `node` until Finish() or until the node stops
// answering: kSingleThreads threads POSTing 1 to their own counter, one
// POSTing kBatchBody to /counters. Each keeps its connection alive.
class IncrementLoad {
 public:
  explicit IncrementLoad(const NodeProcess& node) {
    for (int t = 0; t < kSingleThreads; ++t) {
      threads_.emplace_back(
          [this, t, url = node.Url("/counter/" + SingleName(t))] {
            Run(url, "1", &single_[t]);
          });
    }
    threads_.emplace_back(
        [this, url = node.Url("/counters")] { Run(url, kBatchBody, &batch_); });
  }
  IncrementLoad(const IncrementLoad&) = delete;
  IncrementLoad& operator=(const IncrementLoad&) = delete;
  ~IncrementLoad() { Finish(); }

  // Requests that got 204 so far, over all threads.
  long acked_requests() const {
    long total = batch_.acked.load();
    for (const ThreadCounts& c : single_) total += c.acked.load();
    return total;
  }

  // Stops and joins the threads, then adds what they did to *totals.
  void Finish(Totals* totals = nullptr) {
    stop_ = true;
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
    if (totals == nullptr) return;
    for (int t = 0; t < kSingleThreads; ++t) {
      totals->acked[SingleName(t)] += single_[t].acked.load();
      totals->sent[SingleName(t)] += single_[t].sent.load();
    }
    totals->acked[kBatchA] += batch_.acked.load();
    totals->sent[kBatchA] += batch_.sent.load();
    totals->acked[kBatchB] += 2 * batch_.acked.load();
    totals->sent[kBatchB] += 2 * batch_.sent.load();
  }

 private:
  struct ThreadCounts {
    std::atomic<long> acked{0};
    std::atomic<long> sent{0};
  };

  // POSTs `body` to `url` in a loop, counting into *counts.
  void Run(const std::string& url, const std::string& body,
           ThreadCounts* counts) {
    HttpClientOptions options;
    options.reuse_connection = true;
    options.timeout_ms = 10000;
    HttpClient client(options);
    while (!stop_.load()) {
      counts->sent.fetch_add(1);
      HttpResponse r = client.Request("POST", url, body);
      if (r.status == 204) {
        counts->acked.fetch_add(1);
      } else if (!r.ok()) {
        return;  // the node is gone
      }
      // Any other status (503 while stopping) was not applied; go on.
    }
  }

  std::atomic<bool> stop_{false};
  ThreadCounts single_[kSingleThreads];
  ThreadCounts batch_;
  std::vector<std::thread> threads_;
};

// GET /counter/<name>/value as a number (-1 if it cannot be read).
long Value(const NodeProcess& node, const std::string& name) {
  HttpResponse r = HttpRequest("GET", node.Url("/counter/" + name + "/value"));
  if (r.status != 200) {
    ADD_FAILURE() << name << ": " << r.status << " " << r.error << r.body;
    return -1;
  }
  return std::stol(r.body);
}

// Runs rounds on one data dir: load, SIGTERM, `second_signal` after the
// round's delay, restart, check every total.
void KillDuringTeardownRounds(int second_signal) {
  TempDir tmp;
  NodeProcessOptions options;
  options.data_dir = tmp.Sub("node");
  // A long flush interval: only the durable path and the final flush write.
  options.flags = {"--challenge_id=1", "--durable",
                   "--flush_interval_ms=600000"};
  NodeProcess node(options);
  ASSERT_TRUE(node.StartAndWait()) << node.ReadLog();

  Totals totals;
  int killed_mid_stop = 0;  // rounds in which the stop did not finish
  // From "at once" to "well into the final flush".
  const int kDelaysMicros[] = {0, 200, 1000, 3000, 8000, 20000, 50000};
  for (int delay_us : kDelaysMicros) {
    SCOPED_TRACE("second signal " + std::to_string(delay_us) +
                 " us after SIGTERM");
    IncrementLoad load(node);
    ASSERT_TRUE(WaitUntil([&] { return load.acked_requests() >= 300; }))
        << node.ReadLog();

    ASSERT_EQ(::kill(node.pid(), SIGTERM), 0);
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    if (second_signal == SIGKILL) {
      node.Kill9();
    } else {
      ::kill(node.pid(), second_signal);  // may already be gone
      EXPECT_NE(node.Wait(), -1) << "the node did not exit";
    }
    load.Finish(&totals);
    const int status = node.exit_status();
    // Killed, exited at the second signal, or stopped cleanly in time; never
    // a crash of its own.
    EXPECT_TRUE(status == 128 + SIGKILL || status == 1 || status == 0)
        << "exit status " << status << "\n"
        << node.ReadLog();
    if (status != 0) ++killed_mid_stop;

    ASSERT_TRUE(node.StartAndWait()) << node.ReadLog();
    for (const auto& [name, acked] : totals.acked) {
      const long value = Value(node, name);
      EXPECT_GE(value, acked) << name << ": acknowledged increments lost";
      EXPECT_LE(value, totals.sent.at(name)) << name;
    }
    if (::testing::Test::HasFailure()) return;
  }
  // Otherwise every round stopped cleanly and nothing above was a kill
  // during teardown.
  EXPECT_GT(killed_mid_stop, 0);
  EXPECT_EQ(node.Stop(), 0) << node.ReadLog();
}

TEST(TeardownKillTest, DurableNodeKilledDuringItsStopKeepsEveryAcknowledged) {
  KillDuringTeardownRounds(SIGKILL);
}

TEST(TeardownKillTest,
     DurableNodeExitingAtASecondSignalKeepsEveryAcknowledged) {
  KillDuringTeardownRounds(SIGTERM);
}

}  // namespace
}  // namespace test
}  // namespace dist_counter
