#include "cluster/peer_resolver.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "testing/metric_value.h"
#include "testing/wait_until.h"
#include "util/metrics.h"

namespace dist_counter {
namespace {

using test::WaitUntil;

// A DNS answer the test changes while a resolver runs. Thread-safe. Its
// ResolveFunction shares the answer, so a resolution still running after
// the resolver stopped (which Stop() does not wait for) never outlives it.
class FakeDns {
 public:
  void Answer(std::vector<std::string> addresses) {
    std::lock_guard<std::mutex> lock(answer_->mu);
    answer_->addresses = std::move(addresses);
    answer_->error = Status::OK();
  }
  void Fail(const Status& error) {
    std::lock_guard<std::mutex> lock(answer_->mu);
    answer_->error = error;
  }
  int calls() const { return answer_->calls.load(); }

  ResolveFunction Function() {
    return [answer = answer_](const std::string& name,
                              std::vector<std::string>* out) {
      ++answer->calls;
      std::lock_guard<std::mutex> lock(answer->mu);
      if (name != "peers.test") return Status::InvalidArgument(name);
      if (!answer->error.ok()) return answer->error;
      *out = answer->addresses;
      return Status::OK();
    };
  }

 private:
  struct Shared {
    std::mutex mu;
    std::vector<std::string> addresses;
    Status error;
    std::atomic<int> calls{0};
  };
  const std::shared_ptr<Shared> answer_ = std::make_shared<Shared>();
};

// Records the lists a resolver delivers. Thread-safe.
class Deliveries {
 public:
  PeersCallback Callback() {
    return [this](const std::vector<std::string>& peers) {
      std::lock_guard<std::mutex> lock(mu_);
      lists_.push_back(peers);
      if (failures_left_ > 0) {
        --failures_left_;
        return Status::StorageUnavailable("disk gone");
      }
      return Status::OK();
    };
  }
  void FailNext(int times) {
    std::lock_guard<std::mutex> lock(mu_);
    failures_left_ = times;
  }
  std::vector<std::vector<std::string>> lists() {
    std::lock_guard<std::mutex> lock(mu_);
    return lists_;
  }
  size_t count() { return lists().size(); }
  std::vector<std::string> last() {
    auto all = lists();
    return all.empty() ? std::vector<std::string>() : all.back();
  }

 private:
  std::mutex mu_;
  std::vector<std::vector<std::string>> lists_;
  int failures_left_ = 0;
};

PeerResolverOptions Options() {
  PeerResolverOptions options;
  options.name = "peers.test";
  options.port = 7000;
  options.interval_ms = 5;
  options.max_peers = 8;
  return options;
}

using Peers = std::vector<std::string>;

TEST(PeersFromAddressesTest, SortsDropsDuplicatesAndAddsThePort) {
  size_t dropped = 9;
  EXPECT_EQ(PeersFromAddresses({"10.0.0.3", "10.0.0.1", "10.0.0.3"}, 7777, 64,
                               &dropped),
            (Peers{"10.0.0.1:7777", "10.0.0.3:7777"}));
  EXPECT_EQ(dropped, 0u);
}

TEST(PeersFromAddressesTest, KeepsAtMostMaxPeersAndCountsTheRest) {
  size_t dropped = 0;
  EXPECT_EQ(PeersFromAddresses({"10.0.0.4", "10.0.0.2", "10.0.0.3", "10.0.0.1"},
                               80, 2, &dropped),
            (Peers{"10.0.0.1:80", "10.0.0.2:80"}));
  EXPECT_EQ(dropped, 2u);
}

TEST(PeersFromAddressesTest, LeavesOutWhatIsNotAnIpv4Address) {
  EXPECT_EQ(
      PeersFromAddresses({"::1", "host", "", "10.0.0.1", "1.2.3.4:5"}, 80, 64),
      (Peers{"10.0.0.1:80"}));
}

TEST(PeerResolverTest, DeliversTheFirstAnswerAtOnce) {
  FakeDns dns;
  dns.Answer({"10.0.0.2", "10.0.0.1"});
  Deliveries got;
  PeerResolver resolver(Options(), dns.Function(), got.Callback());
  resolver.Start({});
  ASSERT_TRUE(WaitUntil([&] { return got.count() >= 1; }));
  EXPECT_EQ(got.last(), (Peers{"10.0.0.1:7000", "10.0.0.2:7000"}));
  EXPECT_EQ(resolver.Peers(), got.last());
}

TEST(PeerResolverTest, FollowsTheAnswerAsItChanges) {
  FakeDns dns;
  dns.Answer({"10.0.0.1", "10.0.0.2"});
  Deliveries got;
  PeerResolver resolver(Options(), dns.Function(), got.Callback());
  resolver.Start({});
  ASSERT_TRUE(WaitUntil([&] { return got.count() == 1; }));
  dns.Answer({"10.0.0.1", "10.0.0.2", "10.0.0.3"});
  ASSERT_TRUE(WaitUntil([&] { return got.count() == 2; }));
  EXPECT_EQ(got.last(),
            (Peers{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"}));
  dns.Answer({"10.0.0.3"});
  ASSERT_TRUE(WaitUntil([&] { return got.count() == 3; }));
  EXPECT_EQ(got.last(), (Peers{"10.0.0.3:7000"}));
  EXPECT_EQ(resolver.Stats().changes, 3u);
}

TEST(PeerResolverTest, AnUnchangedAnswerIsDeliveredOnce) {
  FakeDns dns;
  // The same set in another order, as round-robin DNS answers.
  dns.Answer({"10.0.0.1", "10.0.0.2"});
  Deliveries got;
  PeerResolver resolver(Options(), dns.Function(), got.Callback());
  resolver.Start({});
  ASSERT_TRUE(WaitUntil([&] { return got.count() == 1; }));
  dns.Answer({"10.0.0.2", "10.0.0.1", "10.0.0.2"});
  ASSERT_TRUE(WaitUntil([&] { return resolver.Stats().resolutions >= 10; }));
  EXPECT_EQ(got.count(), 1u);
}

TEST(PeerResolverTest, AnAnswerEqualToTheListInForceIsNotDelivered) {
  FakeDns dns;
  dns.Answer({"10.0.0.1", "10.0.0.2"});
  Deliveries got;
  PeerResolver resolver(Options(), dns.Function(), got.Callback());
  resolver.Start({"10.0.0.2:7000", "10.0.0.1:7000"});
  ASSERT_TRUE(WaitUntil([&] { return resolver.Stats().resolutions >= 5; }));
  EXPECT_EQ(got.count(), 0u);
}

TEST(PeerResolverTest, AFailureOrAnEmptyAnswerKeepsTheLastList) {
  FakeDns dns;
  dns.Answer({"10.0.0.1"});
  Deliveries got;
  PeerResolver resolver(Options(), dns.Function(), got.Callback());
  resolver.Start({});
  ASSERT_TRUE(WaitUntil([&] { return got.count() == 1; }));

  dns.Fail(Status::Unavailable("SERVFAIL"));
  ASSERT_TRUE(WaitUntil([&] { return resolver.Stats().failures >= 5; }));
  dns.Answer({});
  const uint64_t failures = resolver.Stats().failures;
  ASSERT_TRUE(
      WaitUntil([&] { return resolver.Stats().failures >= failures + 5; }));
  dns.Answer({"not an address"});
  ASSERT_TRUE(
      WaitUntil([&] { return resolver.Stats().failures >= failures + 10; }));
  EXPECT_EQ(got.count(), 1u);
  EXPECT_EQ(resolver.Peers(), (Peers{"10.0.0.1:7000"}));

  dns.Answer({"10.0.0.9"});
  ASSERT_TRUE(WaitUntil([&] { return got.count() == 2; }));
  EXPECT_EQ(got.last(), (Peers{"10.0.0.9:7000"}));
}

TEST(PeerResolverTest, FailuresAreLoggedAtMostOncePerInterval) {
  FakeDns dns;
  dns.Fail(Status::Unavailable("no DNS"));
  Deliveries got;
  PeerResolverOptions options = Options();
  options.failure_log_interval_ms = 3600 * 1000;
  PeerResolver resolver(options, dns.Function(), got.Callback());
  resolver.Start({});
  ASSERT_TRUE(WaitUntil([&] { return resolver.Stats().failures >= 20; }));
  EXPECT_EQ(resolver.Stats().failure_logs, 1u);
  EXPECT_EQ(got.count(), 0u);
}

TEST(PeerResolverTest, FailuresAreLoggedAgainAfterTheInterval) {
  FakeDns dns;
  dns.Fail(Status::Unavailable("no DNS"));
  Deliveries got;
  PeerResolverOptions options = Options();
  options.failure_log_interval_ms = 1;
  PeerResolver resolver(options, dns.Function(), got.Callback());
  resolver.Start({});
  ASSERT_TRUE(WaitUntil([&] { return resolver.Stats().failure_logs >= 3; }));
}

TEST(PeerResolverTest, AListTheCallbackRefusedIsDeliveredAgain) {
  FakeDns dns;
  dns.Answer({"10.0.0.1"});
  Deliveries got;
  got.FailNext(2);
  PeerResolver resolver(Options(), dns.Function(), got.Callback());
  resolver.Start({});
  ASSERT_TRUE(WaitUntil([&] { return resolver.Stats().changes == 1; }));
  const auto lists = got.lists();
  ASSERT_EQ(lists.size(), 3u);
  for (const auto& list : lists) EXPECT_EQ(list, (Peers{"10.0.0.1:7000"}));
  EXPECT_EQ(resolver.Peers(), (Peers{"10.0.0.1:7000"}));
  // The answers were good: no resolution failed, one report was written.
  EXPECT_EQ(resolver.Stats().failures, 0u);
  EXPECT_EQ(resolver.Stats().failure_logs, 1u);
}

TEST(PeerResolverTest, CutsTheAnswerToMaxPeers) {
  FakeDns dns;
  dns.Answer({"10.0.0.3", "10.0.0.2", "10.0.0.1"});
  Deliveries got;
  PeerResolverOptions options = Options();
  options.max_peers = 2;
  PeerResolver resolver(options, dns.Function(), got.Callback());
  resolver.Start({});
  ASSERT_TRUE(WaitUntil([&] { return got.count() == 1; }));
  EXPECT_EQ(got.last(), (Peers{"10.0.0.1:7000", "10.0.0.2:7000"}));
}

TEST(PeerResolverTest, NothingRunsBeforeStartOrAfterStop) {
  FakeDns dns;
  dns.Answer({"10.0.0.1"});
  Deliveries got;
  { PeerResolver resolver(Options(), dns.Function(), got.Callback()); }
  EXPECT_EQ(dns.calls(), 0);
  PeerResolver resolver(Options(), dns.Function(), got.Callback());
  resolver.Start({});
  ASSERT_TRUE(WaitUntil([&] { return got.count() == 1; }));
  resolver.Stop();
  const int calls = dns.calls();
  dns.Answer({"10.0.0.2"});
  resolver.Start({});  // no effect after Stop()
  // A running resolver beside it resolves five times meanwhile.
  FakeDns running_dns;
  running_dns.Answer({"10.0.0.3"});
  Deliveries running_got;
  PeerResolver running(Options(), running_dns.Function(),
                       running_got.Callback());
  running.Start({});
  ASSERT_TRUE(WaitUntil([&] { return running_dns.calls() >= 5; }));
  running.Stop();
  EXPECT_EQ(dns.calls(), calls);
  EXPECT_EQ(got.count(), 1u);
}

TEST(PeerResolverTest, CountsResolutionsAndPeersInMetrics) {
  Metrics metrics;
  FakeDns dns;
  dns.Answer({"10.0.0.1", "10.0.0.2"});
  Deliveries got;
  PeerResolverOptions options = Options();
  options.metrics = &metrics;
  PeerResolver resolver(options, dns.Function(), got.Callback());
  EXPECT_EQ(test::MetricValue(metrics.Render(), "dist_counter_peers_dns_peers"),
            0);
  resolver.Start({});
  ASSERT_TRUE(WaitUntil([&] { return got.count() == 1; }));
  dns.Fail(Status::Unavailable("no DNS"));
  ASSERT_TRUE(WaitUntil([&] { return resolver.Stats().failures >= 3; }));
  resolver.Stop();
  const PeerResolverStats stats = resolver.Stats();
  const std::string text = metrics.Render();
  EXPECT_EQ(test::MetricValue(text, "dist_counter_peers_dns_peers"), 2) << text;
  EXPECT_EQ(
      test::MetricValue(
          text, "dist_counter_peers_dns_resolutions_total{result=\"error\"}"),
      stats.failures)
      << text;
  EXPECT_EQ(
      test::MetricValue(
          text, "dist_counter_peers_dns_resolutions_total{result=\"ok\"}"),
      stats.resolutions - stats.failures)
      << text;
}

// A resolve function that blocks until released.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  bool open = false;
};

TEST(PeerResolverTest, StopDoesNotWaitForAResolutionNorDeliverIt) {
  auto gate = std::make_shared<Gate>();
  auto delivered = std::make_shared<std::atomic<int>>(0);
  ResolveFunction blocking = [gate](const std::string&,
                                    std::vector<std::string>* out) {
    std::unique_lock<std::mutex> lock(gate->mu);
    gate->entered = true;
    gate->cv.notify_all();
    gate->cv.wait(lock, [&] { return gate->open; });
    out->push_back("10.0.0.1");
    return Status::OK();
  };
  auto resolver = std::make_unique<PeerResolver>(
      Options(), std::move(blocking),
      [delivered](const std::vector<std::string>&) {
        ++*delivered;
        return Status::OK();
      });
  resolver->Start({});
  {
    std::unique_lock<std::mutex> lock(gate->mu);
    gate->cv.wait(lock, [&] { return gate->entered; });
  }
  auto stopped = std::async(std::launch::async, [&] { resolver.reset(); });
  const bool returned = WaitUntil([&] {
    return stopped.wait_for(std::chrono::seconds(0)) ==
           std::future_status::ready;
  });
  {
    std::lock_guard<std::mutex> lock(gate->mu);
    gate->open = true;
  }
  gate->cv.notify_all();
  stopped.wait();
  EXPECT_TRUE(returned) << "Stop() waited for the blocked resolution";
  // The left thread drops its state (and our gate) once the call returns.
  ASSERT_TRUE(WaitUntil([&] { return gate.use_count() == 1; }));
  EXPECT_EQ(delivered->load(), 0);
}

TEST(MakeServerResolverTest, RefusesWhatIsNotAnIpv4AddressAndPort) {
  ResolveFunction resolve;
  for (const char* bad :
       {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
        "localhost:53", "::1:53", "127.0.0.1:53x"}) {
    EXPECT_TRUE(MakeServerResolver(bad, 1000, &resolve).IsInvalidArgument())
        << bad;
  }
  EXPECT_TRUE(MakeServerResolver("127.0.0.1:5353", 1000, &resolve).ok());
  EXPECT_TRUE(static_cast<bool>(resolve));
}

TEST(MakeServerResolverTest, ASilentServerIsAFailureAfterTheTimeout) {
  // A UDP socket that never answers.
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
            0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  ResolveFunction resolve;
  ASSERT_TRUE(
      MakeServerResolver("127.0.0.1:" + std::to_string(ntohs(address.sin_port)),
                         1, &resolve)
          .ok());
  std::vector<std::string> addresses;
  EXPECT_TRUE(resolve("peers.test", &addresses).IsUnavailable());
  EXPECT_TRUE(addresses.empty());
  close(fd);
}

TEST(ResolveWithSystemTest, ResolvesLocalhostFromTheHostsFile) {
  std::vector<std::string> addresses;
  ASSERT_TRUE(ResolveWithSystem("localhost", &addresses).ok());
  EXPECT_NE(std::find(addresses.begin(), addresses.end(), "127.0.0.1"),
            addresses.end());
}

}  // namespace
}  // namespace dist_counter
