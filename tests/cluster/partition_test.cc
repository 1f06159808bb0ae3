// Real network faults against real nodes: three dist_counter processes, each
// in its own network namespace behind one bridge (tests/testing/
// netns_cluster.h), in durable mode with a short merge interval.
//
// A Jepsen-style run: client threads increment counters on every node while
// a nemesis, from a seeded schedule, cuts links both ways and one way,
// isolates a node, drops 30 % of a node's packets, delays them by 200 ms,
// pauses a node (SIGSTOP) and kills one (kill -9) before starting it again.
// Each increment is acknowledged (204), failed (an error reply: applied
// nowhere) or unknown (no reply: maybe applied). After the faults are healed
// every node must read the same value for each counter, within
// [acknowledged, acknowledged + unknown]: durable mode loses nothing it
// acknowledged, and nothing is counted that was not sent.
//
// The seed is printed; DIST_COUNTER_NEMESIS_SEED=<seed> replays a schedule
// and DIST_COUNTER_NEMESIS_SECONDS sets the length of the faulty phase
// (default 60). Needs root and iproute2/iptables; skipped, saying what is
// missing, without them. Timings are logged, never asserted: deadlines only
// bound a failing test.

#include <gtest/gtest.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "testing/http_client.h"
#include "testing/netns.h"
#include "testing/netns_cluster.h"
#include "testing/wait_until.h"

namespace dist_counter {
namespace {

using test::HttpClient;
using test::HttpResponse;
using test::NetnsCluster;
using test::NetnsClusterOptions;

using Clock = std::chrono::steady_clock;

constexpr int kMergeIntervalMs = 200;
constexpr int kConvergeMs = 60000;  // bounds a failing wait only
const char* const kCounters[] = {"k0", "k1", "k2", "k3"};
constexpr int kNumCounters = sizeof(kCounters) / sizeof(kCounters[0]);

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void SleepMs(int64_t ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// The value of environment variable `name` as a number, or `fallback`.
uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  uint64_t value = 0;
  const char* end = text + std::char_traits<char>::length(text);
  auto [ptr, ec] = std::from_chars(text, end, value);
  return ec == std::errc() && ptr == end ? value : fallback;
}

bool ParseValue(const std::string& text, int64_t* value) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *value);
  return ec == std::errc() && ptr == end;
}

NetnsClusterOptions DurableCluster() {
  NetnsClusterOptions options;
  options.nodes = 3;
  options.flags = {"--durable",
                   "--merge_interval_ms=" + std::to_string(kMergeIntervalMs),
                   "--flush_interval_ms=500", "--peer_timeout_ms=1000"};
  return options;
}

class PartitionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string missing = NetnsCluster::MissingPrerequisites();
    if (!missing.empty()) {
      GTEST_SKIP() << "network namespaces unavailable: " << missing;
    }
    cluster_ = std::make_unique<NetnsCluster>(DurableCluster());
    ASSERT_TRUE(cluster_->Create()) << cluster_->error();
    ASSERT_TRUE(cluster_->StartAll()) << cluster_->error();
  }

  // Every node stops cleanly, with no sanitizer report in its log.
  void TearDown() override {
    if (cluster_ == nullptr) return;
    EXPECT_TRUE(cluster_->StopAll()) << cluster_->error();
    if (HasFailure()) std::cerr << cluster_->LogTails();
    cluster_.reset();
  }

  // Node i's /value of `name` (the caller is in the client namespace), or
  // "?" if it did not answer.
  std::string Value(int i, const std::string& name) {
    HttpResponse r = test::HttpRequest(
        "GET", cluster_->Url(i, "/counter/" + name + "/value"), "", {}, 2000);
    return r.ok() && r.status == 200 ? r.body : "?";
  }

  std::unique_ptr<NetnsCluster> cluster_;
};

// ---- what the clients saw

// One counter's increments, by outcome.
struct Tally {
  int64_t acked = 0;    // sum of deltas answered 204
  int64_t unknown = 0;  // sum of deltas with no reply (maybe applied)
  int acked_ops = 0;
  int unknown_ops = 0;
  int failed_ops = 0;    // error replies: applied nowhere
  int not_sent_ops = 0;  // no connection could be made: applied nowhere

  void Add(const Tally& other) {
    acked += other.acked;
    unknown += other.unknown;
    acked_ops += other.acked_ops;
    unknown_ops += other.unknown_ops;
    failed_ops += other.failed_ops;
    not_sent_ops += other.not_sent_ops;
  }
};

// Client threads, each incrementing random counters on one node from the
// client namespace until Stop(), a new connection for each increment (so a
// connection that cannot be made means that nothing was sent).
class Clients {
 public:
  Clients(NetnsCluster* cluster, int threads, uint64_t seed)
      : tallies_(threads, std::vector<Tally>(kNumCounters)) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back(
          [this, cluster, t, seed] { Run(cluster, t, seed + 1000 + t); });
    }
  }

  ~Clients() { Stop(); }

  // Stops and joins the threads.
  void Stop() {
    stop_ = true;
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
  }

  Tally Of(int counter) const {
    Tally total;
    for (const auto& tally : tallies_) total.Add(tally[counter]);
    return total;
  }

  std::string Errors() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string text;
    for (const auto& [what, count] : errors_) {
      text += std::to_string(count) + " x " + what + "; ";
    }
    return text;
  }

 private:
  void Run(NetnsCluster* cluster, int t, uint64_t seed) {
    std::string error;
    if (!test::EnterNetns(cluster->client_netns(), &error)) {
      Count("cannot enter the client namespace: " + error);
      return;
    }
    std::mt19937_64 rng(seed);
    HttpClient client;
    const int node = t % cluster->size();
    std::vector<Tally>& tally = tallies_[t];
    while (!stop_) {
      const int counter = static_cast<int>(rng() % kNumCounters);
      const int64_t delta = 1 + static_cast<int64_t>(rng() % 5);
      HttpResponse r = client.Request(
          "POST",
          cluster->Url(node, std::string("/counter/") + kCounters[counter]),
          std::to_string(delta), {}, /*timeout_ms=*/1500);
      if (r.ok() && r.status == 204) {
        tally[counter].acked += delta;
        ++tally[counter].acked_ops;
      } else if (r.ok()) {
        ++tally[counter].failed_ops;
        Count(std::to_string(r.status) + " " + r.body);
      } else if (r.connect_failed) {
        ++tally[counter].not_sent_ops;
        Count(Kind(r.error));
      } else {
        tally[counter].unknown += delta;
        ++tally[counter].unknown_ops;
        Count(Kind(r.error));
      }
      SleepMs(20);  // a few hundred increments a second in all
    }
  }

  // A transport error without its varying parts (times, ports).
  static std::string Kind(const std::string& error) {
    if (error.find("timed out") != std::string::npos) return "timed out";
    if (error.rfind("Failed to connect to ", 0) == 0) {
      return error.substr(0, error.find(" port "));
    }
    return error.substr(0, 60);
  }

  void Count(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    ++errors_[what];
  }

  std::atomic<bool> stop_{false};
  // tallies_[t] is written by thread t only, read after Stop().
  std::vector<std::vector<Tally>> tallies_;
  std::vector<std::thread> threads_;
  std::mutex mu_;                      // guards errors_
  std::map<std::string, int> errors_;  // what failed and unknown ops got
};

// ---- the nemesis

enum class Fault {
  kCutTwoWay,  // a <-> b
  kCutOneWay,  // a -> b
  kIsolate,    // a from every other node, both ways
  kLoss,       // 30 % of a's packets
  kDelay,      // a's packets wait 200 ms (a slow link without netem)
  kPause,      // SIGSTOP a, SIGCONT after the hold
  kKill,       // kill -9 a, start it again after the hold
  kCount
};

// Applies faults from a seeded schedule, one at a time: a fault, a hold of
// 1-4 s, its undoing, a quiet moment. Every step is logged with its time
// since the start.
class Nemesis {
 public:
  Nemesis(NetnsCluster* cluster, uint64_t seed)
      : cluster_(cluster), rng_(seed), start_(Clock::now()) {}

  // Runs steps until `seconds` have passed. Returns false (with a failure
  // added) if a fault could not be applied or undone.
  bool RunFor(int seconds) {
    const auto end = start_ + std::chrono::seconds(seconds);
    while (Clock::now() < end) {
      const auto fault =
          static_cast<Fault>(rng_() % static_cast<uint64_t>(Fault::kCount));
      const int a = static_cast<int>(rng_() % cluster_->size());
      const int b =
          (a + 1 + static_cast<int>(rng_() % (cluster_->size() - 1))) %
          cluster_->size();
      const int64_t hold_ms = Between(1000, 4000);
      Log(Describe(fault, a, b) + " for " + std::to_string(hold_ms) + " ms");
      ++applied_[Name(fault)];
      if (!Apply(fault, a, b)) return false;
      SleepMs(hold_ms);
      if (!Undo(fault, a)) return false;
      SleepMs(Between(300, 1000));
    }
    return true;
  }

  // Heals the network and resumes paused nodes. Every node should be
  // running (a killed one was started again): one that exited by itself is
  // a failure.
  bool HealAll() {
    Log("heal everything");
    bool ok = cluster_->HealNetwork();
    if (!ok) ADD_FAILURE() << "heal: " << cluster_->error();
    for (int i = 0; i < cluster_->size(); ++i) {
      test::NodeProcess& node = cluster_->node(i);
      node.Resume();
      if (node.running()) continue;
      ADD_FAILURE() << "n" << i + 1 << " exited by itself, status "
                    << node.exit_status() << "; log " << node.log_path();
      ok = false;
    }
    return ok;
  }

  // "cut two-way x3 kill -9 x2 ...": how often each fault was applied.
  std::string Summary() const {
    std::string text;
    for (const auto& [name, count] : applied_) {
      text += name + " x" + std::to_string(count) + " ";
    }
    return text;
  }

 private:
  std::string Name(Fault fault) const {
    switch (fault) {
      case Fault::kCutTwoWay:
        return "cut two-way";
      case Fault::kCutOneWay:
        return "cut one-way";
      case Fault::kIsolate:
        return "isolate";
      case Fault::kLoss:
        return "loss 30%";
      case Fault::kDelay:
        return cluster_->netem_available() ? "delay 200ms" : "throttle 64kbit";
      case Fault::kPause:
        return "pause";
      default:
        return "kill -9";
    }
  }

  std::string Describe(Fault fault, int a, int b) const {
    const std::string na = "n" + std::to_string(a + 1);
    const std::string nb = "n" + std::to_string(b + 1);
    switch (fault) {
      case Fault::kCutTwoWay:
        return Name(fault) + " " + na + " <-> " + nb;
      case Fault::kCutOneWay:
        return Name(fault) + " " + na + " -> " + nb;
      case Fault::kIsolate:
        return Name(fault) + " " + na + " from its peers";
      case Fault::kLoss:
      case Fault::kDelay:
        return Name(fault) + " on " + na + "'s link";
      case Fault::kPause:
        return Name(fault) + " " + na + " (SIGSTOP)";
      default:
        return Name(fault) + " " + na + ", down";
    }
  }

  bool Apply(Fault fault, int a, int b) {
    bool ok = true;
    switch (fault) {
      case Fault::kCutTwoWay:
        ok = cluster_->CutTwoWay(a, b);
        break;
      case Fault::kCutOneWay:
        ok = cluster_->CutOneWay(a, b);
        break;
      case Fault::kIsolate:
        for (int i = 0; i < cluster_->size() && ok; ++i) {
          if (i != a) ok = cluster_->CutTwoWay(a, i);
        }
        break;
      case Fault::kLoss:
        ok = cluster_->Loss(a, 30);
        break;
      case Fault::kDelay:
        ok = cluster_->netem_available() ? cluster_->Delay(a, 200)
                                         : cluster_->Throttle(a, 64);
        break;
      case Fault::kPause:
        cluster_->node(a).Pause();
        break;
      default:
        cluster_->node(a).Kill9();
        break;
    }
    if (!ok) ADD_FAILURE() << "nemesis: " << cluster_->error();
    return ok;
  }

  bool Undo(Fault fault, int a) {
    if (fault == Fault::kPause) {
      cluster_->node(a).Resume();
      return true;
    }
    if (fault == Fault::kKill) {
      const auto restart = Clock::now();
      if (!cluster_->node(a).StartAndWait()) {
        ADD_FAILURE() << "n" << a + 1
                      << " did not restart: " << cluster_->node(a).ReadLog();
        return false;
      }
      Log("n" + std::to_string(a + 1) + " serves again after " +
          std::to_string(static_cast<int>(SecondsSince(restart) * 1000)) +
          " ms");
      return true;
    }
    if (cluster_->HealNetwork()) return true;
    ADD_FAILURE() << "nemesis: " << cluster_->error();
    return false;
  }

  int64_t Between(int64_t low, int64_t high) {
    return low + static_cast<int64_t>(rng_() % (high - low + 1));
  }

  void Log(const std::string& what) const {
    std::cout << "[nemesis " << std::fixed << std::setprecision(1)
              << SecondsSince(start_) << " s] " << what << std::endl;
  }

  NetnsCluster* const cluster_;
  std::mt19937_64 rng_;
  const Clock::time_point start_;
  std::map<std::string, int> applied_;  // fault name -> times applied
};

TEST_F(PartitionTest, AcknowledgedIncrementsSurviveNetworkFaultsAndConverge) {
  const uint64_t seed =
      EnvNumber("DIST_COUNTER_NEMESIS_SEED", std::random_device{}());
  const int seconds =
      static_cast<int>(EnvNumber("DIST_COUNTER_NEMESIS_SECONDS", 60));
  SCOPED_TRACE(
      "seed " + std::to_string(seed) +
      ": replay with DIST_COUNTER_NEMESIS_SEED=" + std::to_string(seed));
  std::cout << "nemesis seed " << seed << ", " << seconds << " s of faults"
            << (cluster_->netem_available() ? ""
                                            : " (no netem: throttling "
                                              "instead of delay)")
            << std::endl;

  Clients clients(cluster_.get(), /*threads=*/6, seed);
  // The nemesis runs on this thread, which started the nodes: a node dies
  // with the thread that started it (PR_SET_PDEATHSIG).
  Nemesis nemesis(cluster_.get(), seed);
  const bool schedule_ok = nemesis.RunFor(seconds);
  const bool healed = nemesis.HealAll();
  const auto heal_time = Clock::now();
  SleepMs(1000);  // clients keep going on the healed cluster for a moment
  clients.Stop();
  ASSERT_TRUE(schedule_ok && healed);

  // Every node reads the same value for every counter.
  std::vector<std::vector<std::string>> values(kNumCounters);
  bool converged = false;
  std::string error;
  ASSERT_TRUE(test::RunInNetns(
      cluster_->client_netns(),
      [&] {
        converged = test::WaitUntil(
            [&] {
              for (int c = 0; c < kNumCounters; ++c) {
                values[c].clear();
                for (int i = 0; i < cluster_->size(); ++i) {
                  values[c].push_back(Value(i, kCounters[c]));
                }
                for (const std::string& v : values[c]) {
                  if (v == "?" || v != values[c][0]) return false;
                }
              }
              return true;
            },
            kConvergeMs, /*poll_ms=*/100);
      },
      &error))
      << error;
  const double converge_s = SecondsSince(heal_time);

  Tally all;
  for (int c = 0; c < kNumCounters; ++c) {
    const Tally tally = clients.Of(c);
    all.Add(tally);
    std::string seen;
    for (const std::string& v : values[c]) seen += v + " ";
    std::cout << kCounters[c] << ": nodes read " << seen << "; acknowledged "
              << tally.acked << " (" << tally.acked_ops << " ops), unknown "
              << tally.unknown << " (" << tally.unknown_ops << " ops)"
              << std::endl;
    int64_t value = 0;
    ASSERT_TRUE(converged && ParseValue(values[c][0], &value))
        << kCounters[c] << ": the nodes read " << seen << "after "
        << kConvergeMs << " ms";
    EXPECT_GE(value, tally.acked)
        << kCounters[c] << ": acknowledged increments were lost";
    EXPECT_LE(value, tally.acked + tally.unknown)
        << kCounters[c] << ": counts increments that were never sent or "
        << "were refused; clients got: " << clients.Errors();
  }
  std::cout << "faults: " << nemesis.Summary() << "\nops: " << all.acked_ops
            << " acknowledged, " << all.unknown_ops << " unknown, "
            << all.failed_ops << " refused, " << all.not_sent_ops
            << " not sent (no connection); converged " << converge_s
            << " s after the heal (clients went on for 1 s)\nclients got: "
            << clients.Errors() << std::endl;
  EXPECT_GT(all.acked_ops, 100);
  RecordProperty("acknowledged_ops", all.acked_ops);
  RecordProperty("unknown_ops", all.unknown_ops);
}

TEST_F(PartitionTest, AnIncrementCrossesAThirdNodeWhenTwoNodesAreCutApart) {
  ASSERT_TRUE(cluster_->CutTwoWay(0, 2)) << cluster_->error();
  std::string error;
  HttpResponse across, around;
  ASSERT_TRUE(test::RunInNetns(
      cluster_->node_netns(0),
      [&] {
        across =
            test::HttpRequest("GET", cluster_->Url(2, "/ping"), "", {}, 1000);
        around =
            test::HttpRequest("GET", cluster_->Url(1, "/ping"), "", {}, 1000);
      },
      &error))
      << error;
  ASSERT_FALSE(across.ok()) << "n1 still reaches n3: " << across.status;
  ASSERT_TRUE(around.ok() && around.status == 200) << around.error;

  // n1 -> n2 -> n3 and back, each within a generous bound.
  for (const auto& [from, to] : {std::pair<int, int>{0, 2}, {2, 0}}) {
    const std::string name = "relay" + std::to_string(from + 1);
    HttpResponse r =
        cluster_->Request("POST", cluster_->Url(from, "/counter/" + name), "7");
    ASSERT_TRUE(r.ok() && r.status == 204) << r.error << r.status << r.body;
    const auto start = Clock::now();
    std::string seen;
    ASSERT_TRUE(test::RunInNetns(
        cluster_->client_netns(),
        [&] {
          test::WaitUntil([&] { return (seen = Value(to, name)) == "7"; },
                          /*timeout_ms=*/30000, /*poll_ms=*/50);
        },
        &error))
        << error;
    EXPECT_EQ(seen, "7") << "n" << to + 1 << " never saw n" << from + 1
                         << "'s increment";
    std::cout << "n" << from + 1 << " -> n2 -> n" << to + 1 << ": "
              << static_cast<int>(SecondsSince(start) * 1000) << " ms ("
              << kMergeIntervalMs << " ms merge interval)" << std::endl;
  }
}

}  // namespace
}  // namespace dist_counter
