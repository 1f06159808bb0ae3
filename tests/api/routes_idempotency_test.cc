// POST /counter/<name> with an Idempotency-Key: 400 for a bad key, the
// same reply on a retry (counted once, marked Idempotent-Replayed), 422 for
// a key reused with another request (which the parsed request tells, not
// its text), through Handle() and HandleAsync() (durable store); and
// keyed increments, batches and durable resets answered from the store's
// thread while the disk hangs.

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "api/routes.h"
#include "store/counter_store.h"
#include "store/fault_file_system.h"
#include "testing/node_process.h"
#include "testing/wait_until.h"
#include "util/metrics.h"

namespace dist_counter {
namespace {

class RoutesIdempotencyTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    StoreOptions options;
    options.data_dir = dir_.Sub("db");
    options.challenge_id = "1";
    options.flush_interval_ms = 600000;
    options.durable = GetParam();
    options.TEST_env = faults_.env();
    Status s = CounterStore::Open(options, &store_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    api_ =
        std::make_unique<Api>(ApiOptions(), store_.get(), nullptr, &metrics_);
  }

  // POST /counter/<name> (POST /counters if `name` is empty) with `body` and,
  // if `key` is not null, the key.
  static ApiRequest PostRequest(const std::string& name,
                                const std::string& body, const char* key) {
    ApiRequest request;
    request.method = "POST";
    request.path = name.empty() ? "/counters" : "/counter/" + name;
    request.body = body;
    if (key != nullptr) {
      request.has_idempotency_key = true;
      request.idempotency_key = key;
    }
    return request;
  }

  // PostRequest() through HandleAsync(), waiting for the answer.
  ApiReply Post(const std::string& name, const std::string& body,
                const char* key) {
    const ApiRequest request = PostRequest(name, body, key);
    // An unkeyed increment on a durable store is answered on the store's
    // commit thread.
    auto answered = std::make_shared<std::promise<ApiReply>>();
    api_->HandleAsync(
        request, [answered](const ApiReply& r) { answered->set_value(r); });
    return answered->get_future().get();
  }

  std::string Value(const std::string& name) {
    ApiRequest request;
    request.method = "GET";
    request.path = "/counter/" + name + "/value";
    ApiReply reply;
    api_->Handle(request, &reply);
    return reply.body;
  }

  // The value of the Idempotent-Replayed header of `reply` ("" if none).
  static std::string Replayed(const ApiReply& reply) {
    for (const auto& [name, value] : reply.headers) {
      if (name == "Idempotent-Replayed") return value;
    }
    return "";
  }

  uint64_t Replays() {
    return metrics_.Counter("dist_counter_idempotent_replays_total", "")
        ->load();
  }

  test::TempDir dir_;
  Metrics metrics_;
  FaultEnv faults_;  // outlives the store
  std::unique_ptr<CounterStore> store_;
  std::unique_ptr<Api> api_;
};

TEST_P(RoutesIdempotencyTest, RetryGetsTheSameReplyAndCountsOnce) {
  ApiReply r = Post("c", "5", "key-1");
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(r.body, "");
  r = Post("c", "5", "key-1");
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(Value("c"), "5");
  r = Post("c", "5", "key-2");
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(Value("c"), "10");
  r = Post("c", "5", nullptr);  // no key: counted every time
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(Value("c"), "15");
}

TEST_P(RoutesIdempotencyTest, KeyReusedWithAnotherRequestIs422) {
  ASSERT_EQ(Post("c", "5", "k").status, 204);
  ApiReply r = Post("c", "6", "k");
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(r.body.find("\"type\":\"IdempotencyKeyReused\""), std::string::npos)
      << r.body;
  r = Post("d", "5", "k");
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(Value("c"), "5");
}

TEST_P(RoutesIdempotencyTest, BadKeysAre400AndCountNothing) {
  for (const char* key : {"", "tab\there", "caf\xc3\xa9"}) {
    ApiReply r = Post("c", "5", key);
    EXPECT_EQ(r.status, 400) << key;
    EXPECT_NE(r.body.find("Idempotency-Key"), std::string::npos) << r.body;
  }
  const std::string long_key(129, 'k');
  EXPECT_EQ(Post("c", "5", long_key.c_str()).status, 400);
  EXPECT_EQ(Post("c", "5", std::string(128, 'k').c_str()).status, 204);
  // A bad body is refused before the key is taken.
  EXPECT_EQ(Post("c", "x", "fresh").status, 400);
  EXPECT_EQ(Post("c", "1", "fresh").status, 204);
  EXPECT_EQ(Value("c"), "6");
}

TEST_P(RoutesIdempotencyTest, BatchWithAKeyIsAppliedOnce) {
  const std::string body = R"({"a":2,"b":3})";
  EXPECT_EQ(Post("", body, "batch-1").status, 204);
  ApiReply r = Post("", body, "batch-1");
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(Value("a"), "2");
  EXPECT_EQ(Value("b"), "3");
  r = Post("", R"({"a":2})", "batch-1");
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_NE(r.body.find("IdempotencyKeyReused"), std::string::npos);
  // The same key on the other route is another request too.
  EXPECT_EQ(Post("a", "2", "batch-1").status, 422);
  EXPECT_EQ(Post("", body, "").status, 400);
  EXPECT_EQ(Post("", "[]", "batch-2").status, 400);
  EXPECT_EQ(Post("", body, nullptr).status, 204);  // no key: counted
  EXPECT_EQ(Value("a"), "4");
}

// The pair whose fingerprints once collided (the name and body joined by a
// newline): "\n5" to a, then "5" to "a\n" with the same key. The second
// is another request, refused; it was once acknowledged and never counted.
TEST_P(RoutesIdempotencyTest, ANameEndingInANewlineIsAnotherRequest) {
  ApiReply r = Post("a", "\n5", "k");
  EXPECT_EQ(r.status, 204) << r.body;
  r = Post("a%0A", "5", "k");
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_NE(r.body.find("IdempotencyKeyReused"), std::string::npos) << r.body;
  EXPECT_EQ(Value("a"), "5");
  EXPECT_EQ(Value("a%0A"), "0");
}

TEST_P(RoutesIdempotencyTest, TheSameDeltaSpelledOtherwiseIsTheSameRequest) {
  EXPECT_EQ(Post("c", "5", "k").status, 204);
  ApiReply r = Post("c", " 5\n", "k");
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(Replayed(r), "true");
  EXPECT_EQ(Value("c"), "5");
}

TEST_P(RoutesIdempotencyTest, AReplayIsMarkedAndCounted) {
  ApiReply r = Post("c", "5", "k");
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(Replayed(r), "");
  EXPECT_EQ(Replays(), 0u);
  r = Post("c", "5", "k");
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(Replayed(r), "true");
  EXPECT_EQ(Replays(), 1u);
  r = Post("c", "6", "k");  // refused: not a replay
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(Replayed(r), "");
  EXPECT_EQ(Post("", R"({"a":1})", "kb").status, 204);
  r = Post("", R"({"a":1})", "kb");
  EXPECT_EQ(Replayed(r), "true");
  EXPECT_EQ(Replays(), 2u);
  EXPECT_EQ(Post("c", "5", nullptr).headers.size(), 0u);
}

TEST_P(RoutesIdempotencyTest, ABatchInAnotherOrderIsTheSameRequest) {
  EXPECT_EQ(Post("", R"({"a":2,"b":3})", "k").status, 204);
  ApiReply r = Post("", R"({"b":3, "a":2})", "k");
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(Replayed(r), "true");
  EXPECT_EQ(Post("", R"({"b":2,"a":3})", "k").status, 422);
  EXPECT_EQ(Value("a"), "2");
  EXPECT_EQ(Value("b"), "3");
}

// With the disk hung, HandleAsync() returns for keyed increments, batches
// and resets without answering (nothing waits on the caller's thread, a
// reactor in the server), other routes are answered meanwhile, and every
// answer comes once the disk does.
TEST_P(RoutesIdempotencyTest, WritesWaitingOnTheDiskLeaveTheCallerFree) {
  ASSERT_EQ(Post("r", "4", nullptr).status, 204);
  faults_.fs()->SetFault(Fault::kStall);
  std::vector<ApiRequest> requests = {
      PostRequest("c", "1", "k1"),
      PostRequest("", R"({"a":1})", "k2"),
  };
  if (GetParam()) {  // only durable ones wait on the disk
    requests.push_back(PostRequest("", R"({"b":1})", nullptr));
    ApiRequest reset;
    reset.method = "DELETE";
    reset.path = "/counter/r";
    requests.push_back(reset);
  }
  std::atomic<int> answered{0};
  std::atomic<int> ok{0};
  // Called from a thread of its own, so that a call that waits for the
  // disk fails the test instead of hanging it.
  std::atomic<bool> returned{false};
  std::thread caller([&] {
    for (const ApiRequest& request : requests) {
      api_->HandleAsync(request, [&](const ApiReply& reply) {
        if (reply.status == 204) ++ok;
        ++answered;
      });
    }
    returned = true;
  });
  EXPECT_TRUE(test::WaitUntil([&] { return returned.load(); }, 10000))
      << "HandleAsync() waited for the disk";
  if (GetParam()) {
    EXPECT_EQ(answered.load(), 0);
  }
  ApiRequest ping;
  ping.method = "GET";
  ping.path = "/ping";
  ApiReply pong;
  api_->Handle(ping, &pong);
  EXPECT_EQ(pong.status, 200) << pong.body;
  faults_.fs()->SetFault(Fault::kNone);
  caller.join();
  ASSERT_TRUE(test::WaitUntil(
      [&] { return answered.load() == static_cast<int>(requests.size()); }));
  EXPECT_EQ(ok.load(), answered.load());
  EXPECT_EQ(Value("c"), "1");
  EXPECT_EQ(Value("a"), "1");
  if (GetParam()) {
    EXPECT_EQ(Value("r"), "0");
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, RoutesIdempotencyTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Durable" : "Default";
                         });

}  // namespace
}  // namespace dist_counter
