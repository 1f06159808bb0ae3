// Tests of the Api with a token (ApiOptions::auth, src/api/routes.h): every
// route but /ping is refused with 401 without the token or with another one,
// and answers as usual with it; without a token nothing changes, except
// protected mode: POST /config and /admin/* answer only loopback clients.

#include <glog/logging.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "api/routes.h"
#include "store/counter_store.h"
#include "testing/metric_value.h"
#include "testing/node_process.h"
#include "testing/warning_collector.h"
#include "util/metrics.h"

namespace dist_counter {
namespace {

constexpr char kToken[] = "0123456789abcdef-the-token";

struct Route {
  std::string method;
  std::string target;  // path, then an optional "?query"
  std::string body;
  int status;  // with the token
};

// Every route, with a request each that succeeds (or fails as it should)
// once authorized. Run in order: the increments come before the reads.
const std::vector<Route>& Routes() {
  static const auto* routes = new std::vector<Route>{
      {"GET", "/config", "", 200},
      {"POST", "/config", "{\"actors\":[]}", 204},
      {"POST", "/counter/a", "2", 204},
      {"GET", "/counter/a", "", 200},
      {"GET", "/counter/a/value", "", 200},
      {"GET", "/counter/a/consistent_value", "", 200},
      {"GET", "/counters", "", 200},
      {"GET", "/counters?prefix=a&limit=5", "", 200},
      {"POST", "/counters", "{\"b\":3}", 204},
      {"GET", "/metrics", "", 200},
      {"GET", "/internal/changes?instance=0&since=0", "", 200},
      {"GET", "/internal/counter/a", "", 200},
      {"GET", "/nope", "", 404},
      {"DELETE", "/config", "", 405},
      {"PUT", "/counter/a", "1", 405},
      {"POST", "/counter/a", std::string(70 * 1024, '1'), 413},
  };
  return *routes;
}

using test::WarningCollector;

class RoutesAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions options;
    options.data_dir = dir_.Sub("db");
    options.challenge_id = "1";
    options.flush_interval_ms = 600000;
    options.metrics = &metrics_;
    Status s = CounterStore::Open(options, &store_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    MakeApi(kToken);
  }

  // A new Api requiring `token` ("": none).
  void MakeApi(const std::string& token, bool protected_mode = true) {
    ApiOptions options;
    options.auth.token = token;
    options.protected_mode = protected_mode;
    api_ = std::make_unique<Api>(options, store_.get(), nullptr, &metrics_);
  }

  // Handles `route` with `authorization` as the header's value ("": none).
  ApiReply Call(const Route& route, const std::string& authorization,
                const std::string& client = "127.0.0.1") {
    ApiRequest request;
    request.method = route.method;
    const size_t q = route.target.find('?');
    request.path = route.target.substr(0, q);
    if (q != std::string::npos) {
      const std::string query = route.target.substr(q + 1);
      size_t start = 0;
      while (start < query.size()) {
        size_t amp = query.find('&', start);
        if (amp == std::string::npos) amp = query.size();
        const std::string pair = query.substr(start, amp - start);
        const size_t eq = pair.find('=');
        request.query[pair.substr(0, eq)] =
            eq == std::string::npos ? "" : pair.substr(eq + 1);
        start = amp + 1;
      }
    }
    request.body = route.body;
    request.authorization = authorization;
    request.client = client;
    ApiReply reply;
    api_->Handle(request, &reply);
    return reply;
  }

  // The value of counter `name`, read with the token.
  std::string Value(const std::string& name) {
    ApiReply r = Call({"GET", "/counter/" + name + "/value", "", 200},
                      std::string("Bearer ") + kToken);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.body;
  }

  test::TempDir dir_;
  Metrics metrics_;  // outlives the store and the Api
  std::unique_ptr<CounterStore> store_;
  std::unique_ptr<Api> api_;
};

// Expects `reply` to be the 401: JSON type Unauthorized, WWW-Authenticate.
void ExpectUnauthorized(const ApiReply& reply, const std::string& what) {
  EXPECT_EQ(reply.status, 401) << what << ": " << reply.body;
  EXPECT_EQ(reply.content_type, "application/json") << what;
  rapidjson::Document doc;
  doc.Parse(reply.body.c_str(), reply.body.size());
  ASSERT_FALSE(doc.HasParseError()) << what << ": " << reply.body;
  ASSERT_TRUE(doc.IsObject()) << what;
  ASSERT_TRUE(doc.HasMember("type") && doc["type"].IsString()) << reply.body;
  EXPECT_STREQ(doc["type"].GetString(), "Unauthorized") << what;
  ASSERT_TRUE(doc.HasMember("message") && doc["message"].IsString());
  EXPECT_GT(doc["message"].GetStringLength(), 0u) << what;
  EXPECT_EQ(doc.MemberCount(), 2u) << reply.body;
  const std::vector<std::pair<std::string, std::string>> want = {
      {"WWW-Authenticate", "Bearer"}};
  EXPECT_EQ(reply.headers, want) << what;
  EXPECT_EQ(reply.route, "unauthorized") << what;
}

TEST_F(RoutesAuthTest, EveryRouteButPingIsRefusedWithoutTheToken) {
  for (const Route& route : Routes()) {
    ExpectUnauthorized(Call(route, ""), route.method + " " + route.target);
  }
  // Nothing refused took effect.
  EXPECT_EQ(Value("a"), "0");
  EXPECT_EQ(Value("b"), "0");
}

TEST_F(RoutesAuthTest, EveryRouteButPingIsRefusedWithAnotherToken) {
  const std::string token = kToken;
  const std::string wrong[] = {"Bearer wrong",
                               "Bearer " + token + "x",
                               "Bearer " + token.substr(1),
                               "Bearer",
                               "Basic " + token,
                               token,
                               "Bearer " + token + " " + token};
  for (const Route& route : Routes()) {
    for (const std::string& authorization : wrong) {
      ExpectUnauthorized(
          Call(route, authorization),
          route.method + " " + route.target + " with " + authorization);
    }
  }
  EXPECT_EQ(Value("a"), "0");
  EXPECT_EQ(Value("b"), "0");
}

TEST_F(RoutesAuthTest, EveryRouteAnswersAsUsualWithTheToken) {
  for (const Route& route : Routes()) {
    ApiReply r = Call(route, std::string("Bearer ") + kToken);
    EXPECT_EQ(r.status, route.status)
        << route.method << " " << route.target << ": " << r.body;
    EXPECT_TRUE(r.headers.empty()) << route.method << " " << route.target;
    EXPECT_NE(r.route, "unauthorized");
  }
  EXPECT_EQ(Value("a"), "2");
  EXPECT_EQ(Value("b"), "3");
  // The scheme's case does not matter.
  ApiReply r = Call(Routes()[0], std::string("bearer ") + kToken);
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(RoutesAuthTest, PingIsOpenToAnyMethodWithOrWithoutAToken) {
  for (const char* method : {"GET", "POST", "PUT", "DELETE", "HEAD"}) {
    for (const char* authorization : {"", "Bearer wrong", "Basic x"}) {
      ApiReply r = Call({method, "/ping", "", 200}, authorization);
      EXPECT_EQ(r.status, 200) << method << " " << authorization;
      EXPECT_EQ(r.body, "{\"status\":\"OK\"}");
      EXPECT_TRUE(r.headers.empty());
    }
  }
  // Only /ping itself: paths that merely start with it are not open.
  ExpectUnauthorized(Call({"GET", "/ping/x", "", 404}, ""), "/ping/x");
  ExpectUnauthorized(Call({"GET", "/pingx", "", 404}, ""), "/pingx");
}

TEST_F(RoutesAuthTest, RefusalsAreCountedByReason) {
  Call(Routes()[0], "");
  Call(Routes()[0], "");
  Call(Routes()[0], "Basic x");
  Call(Routes()[0], "Bearer wrong");
  Call(Routes()[0], "Bearer wrong");
  Call(Routes()[0], "Bearer wrong");
  Call(Routes()[0], std::string("Bearer ") + kToken);
  const std::string text = metrics_.Render();
  EXPECT_EQ(
      test::MetricValue(
          text, "dist_counter_http_unauthorized_total{reason=\"missing\"}"),
      2)
      << text;
  EXPECT_EQ(
      test::MetricValue(
          text, "dist_counter_http_unauthorized_total{reason=\"not_bearer\"}"),
      1)
      << text;
  EXPECT_EQ(
      test::MetricValue(
          text, "dist_counter_http_unauthorized_total{reason=\"wrong_token\"}"),
      3)
      << text;
  EXPECT_EQ(test::MetricValue(
                text,
                "dist_counter_http_requests_total{route=\"unauthorized\","
                "status=\"401\"}"),
            6)
      << text;
}

TEST_F(RoutesAuthTest, RefusalsAreLoggedOncePerSourceWithoutTheToken) {
  WarningCollector warnings;
  for (int i = 0; i < 20; ++i) {
    Call(Routes()[0], "Bearer not-the-token-" + std::to_string(i), "10.9.8.7");
    Call(Routes()[2], "", "10.9.8.6");
  }
  const std::vector<std::string> lines = warnings.Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("GET /config from 10.9.8.7: wrong token"),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[1].find("POST /counter/a from 10.9.8.6"), std::string::npos)
      << lines[1];
  for (const std::string& line : lines) {
    EXPECT_EQ(line.find("not-the-token"), std::string::npos) << line;
    EXPECT_EQ(line.find(kToken), std::string::npos) << line;
  }
}

TEST_F(RoutesAuthTest, HandleAsyncRefusesToo) {
  int calls = 0;
  ApiRequest request;
  request.method = "POST";
  request.path = "/counter/a";
  request.body = "5";
  api_->HandleAsync(request, [&](const ApiReply& reply) {
    ++calls;
    ExpectUnauthorized(reply, "async increment");
  });
  EXPECT_EQ(calls, 1);
  request.authorization = std::string("Bearer ") + kToken;
  api_->HandleAsync(request, [&](const ApiReply& reply) {
    ++calls;
    EXPECT_EQ(reply.status, 204) << reply.body;
  });
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(Value("a"), "5");
}

TEST_F(RoutesAuthTest, WithoutATokenNothingChanges) {
  Metrics fresh;
  api_ = std::make_unique<Api>(ApiOptions(), store_.get(), nullptr, &fresh);
  for (const Route& route : Routes()) {
    for (const char* authorization : {"", "Bearer whatever"}) {
      ApiReply r = Call(route, authorization);
      EXPECT_EQ(r.status, route.status)
          << route.method << " " << route.target << ": " << r.body;
      EXPECT_TRUE(r.headers.empty());
    }
  }
  EXPECT_EQ(fresh.Render().find("unauthorized"), std::string::npos);
  api_.reset();  // before `fresh`
}

// ---- Protected mode

// The routes protected mode keeps for loopback clients, each with a request
// and the status it gets once let through.
const std::vector<Route>& GuardedRoutes() {
  static const auto* routes = new std::vector<Route>{
      {"POST", "/config", "{\"actors\":[\"10.1.1.1:7777\"]}", 204},
      {"POST", "/admin/backup", "", 503},  // no backup_dir in these tests
      {"GET", "/admin/backups", "", 503},
  };
  return *routes;
}

// Addresses of callers that are not on loopback ("": unknown).
const std::vector<std::string>& RemoteClients() {
  static const auto* clients = new std::vector<std::string>{
      "10.9.8.7", "192.168.1.20", "128.0.0.1", "::ffff:10.0.0.1",
      "2001:db8::1", "::", ""};
  return *clients;
}

// Expects `reply` to be protected mode's 403, saying how to allow it.
void ExpectForbidden(const ApiReply& reply, const std::string& what) {
  EXPECT_EQ(reply.status, 403) << what << ": " << reply.body;
  rapidjson::Document doc;
  doc.Parse(reply.body.c_str(), reply.body.size());
  ASSERT_FALSE(doc.HasParseError()) << what << ": " << reply.body;
  ASSERT_TRUE(doc.IsObject() && doc.HasMember("type") &&
              doc["type"].IsString() && doc.HasMember("message") &&
              doc["message"].IsString())
      << reply.body;
  EXPECT_STREQ(doc["type"].GetString(), "Forbidden") << what;
  const std::string message = doc["message"].GetString();
  EXPECT_NE(message.find("protected mode"), std::string::npos) << message;
  EXPECT_NE(message.find("--auth_token_file"), std::string::npos) << message;
  EXPECT_NE(message.find("--protected_mode=false"), std::string::npos)
      << message;
}

bool IsGuarded(const Route& route) {
  for (const Route& guarded : GuardedRoutes()) {
    if (guarded.method == route.method && guarded.target == route.target) {
      return true;
    }
  }
  return false;
}

TEST_F(RoutesAuthTest, WithoutATokenOnlyLoopbackClientsMayReconfigure) {
  MakeApi("");
  for (const std::string& client : RemoteClients()) {
    for (const Route& route : GuardedRoutes()) {
      ExpectForbidden(Call(route, "", client),
                      route.method + " " + route.target + " from " + client);
    }
    // Everything else stays open to them, as without protected mode.
    for (const Route& route : Routes()) {
      if (IsGuarded(route)) continue;
      EXPECT_EQ(Call(route, "", client).status, route.status)
          << route.method << " " << route.target << " from " << client;
    }
  }
  EXPECT_TRUE(store_->Peers().empty());  // no refused request took effect
  for (const char* client : {"127.0.0.1", "127.0.0.53", "::1", "[::1]",
                             "::ffff:127.0.0.1"}) {
    for (const Route& route : GuardedRoutes()) {
      ApiReply r = Call(route, "", client);
      EXPECT_EQ(r.status, route.status)
          << route.method << " " << route.target << " from " << client << ": "
          << r.body;
    }
  }
  EXPECT_EQ(store_->Peers(), std::vector<std::string>{"10.1.1.1:7777"});
}

TEST_F(RoutesAuthTest, ProtectedModeOffLetsAnyClientReconfigure) {
  MakeApi("", /*protected_mode=*/false);
  for (const std::string& client : RemoteClients()) {
    for (const Route& route : GuardedRoutes()) {
      EXPECT_EQ(Call(route, "", client).status, route.status)
          << route.method << " " << route.target << " from " << client;
    }
  }
  EXPECT_EQ(store_->Peers(), std::vector<std::string>{"10.1.1.1:7777"});
}

TEST_F(RoutesAuthTest, WithATokenTheTokenAloneDecides) {
  for (const bool protected_mode : {true, false}) {
    MakeApi(kToken, protected_mode);
    for (const std::string& client : RemoteClients()) {
      for (const Route& route : GuardedRoutes()) {
        const std::string what = route.method + " " + route.target + " from " +
                                 client + (protected_mode ? "" : " (off)");
        ExpectUnauthorized(Call(route, "", client), what);
        ExpectUnauthorized(Call(route, "Bearer wrong", "127.0.0.1"), what);
        EXPECT_EQ(Call(route, std::string("Bearer ") + kToken, client).status,
                  route.status)
            << what;
      }
    }
  }
}

TEST_F(RoutesAuthTest, ProtectedModeRefusalsAreCountedAndLoggedRateLimited) {
  MakeApi("");
  WarningCollector warnings;
  for (int i = 0; i < 20; ++i) {
    ExpectForbidden(Call(GuardedRoutes()[0], "", "10.9.8.7"), "POST /config");
  }
  const std::vector<std::string> lines = warnings.Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("POST /config from 10.9.8.7"), std::string::npos)
      << lines[0];
  const std::string text = metrics_.Render();
  EXPECT_NE(text.find("dist_counter_http_requests_total{route=\"config\","
                      "status=\"403\"} 20"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace dist_counter
