// POST /counter/<name> with an Idempotency-Key: 400 for a bad key, the
// same reply on a retry (counted once), 422 for a key reused with another
// request, through Handle() and HandleAsync() (durable store).

#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>

#include "api/routes.h"
#include "store/counter_store.h"
#include "testing/node_process.h"
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
    Status s = CounterStore::Open(options, &store_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    api_ =
        std::make_unique<Api>(ApiOptions(), store_.get(), nullptr, &metrics_);
  }

  // POST /counter/<name> (POST /counters if `name` is empty) with `body` and,
  // if `key` is not null, the key; through HandleAsync().
  ApiReply Post(const std::string& name, const std::string& body,
                const char* key) {
    ApiRequest request;
    request.method = "POST";
    request.path = name.empty() ? "/counters" : "/counter/" + name;
    request.body = body;
    if (key != nullptr) {
      request.has_idempotency_key = true;
      request.idempotency_key = key;
    }
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

  test::TempDir dir_;
  Metrics metrics_;
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

INSTANTIATE_TEST_SUITE_P(Modes, RoutesIdempotencyTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Durable" : "Default";
                         });

}  // namespace
}  // namespace dist_counter
