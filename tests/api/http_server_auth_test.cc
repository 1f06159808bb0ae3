// Tests of HttpServer (src/api/http_server.h) with a token: the
// Authorization header reaches the Api, and the 401's WWW-Authenticate
// header (one of ApiReply::headers) goes out on the wire.

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "api/http_server.h"
#include "api/routes.h"
#include "store/counter_store.h"
#include "testing/http_client.h"
#include "testing/node_process.h"
#include "util/crc32.h"
#include "util/metrics.h"

namespace dist_counter {
namespace {

using test::HttpClient;
using test::HttpClientOptions;
using test::HttpRequest;
using test::HttpResponse;

constexpr char kToken[] = "wire-token-0123456789abcdef";

class HttpServerAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions store_options;
    store_options.data_dir = dir_.Sub("db");
    store_options.challenge_id = "1";
    store_options.flush_interval_ms = 600000;
    store_options.metrics = &metrics_;
    Status s = CounterStore::Open(store_options, &store_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    Serve(kToken);
  }

  // Serves an Api requiring `token` ("": none) on a new ephemeral port.
  void Serve(const std::string& token) {
    server_.reset();
    ApiOptions api_options;
    api_options.auth.token = token;
    api_ = std::make_unique<Api>(api_options, store_.get(), nullptr, &metrics_);
    HttpServerOptions options;
    options.bind = "127.0.0.1";
    options.port = 0;
    Status s = HttpServer::Start(options, api_.get(), &server_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
  }

  test::TempDir dir_;
  Metrics metrics_;
  std::unique_ptr<CounterStore> store_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<HttpServer> server_;  // stopped first
};

// Expects `r` to be the 401 as it goes over the wire.
void ExpectUnauthorizedOnTheWire(const HttpResponse& r) {
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(r.Header("www-authenticate"), "Bearer");
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.Header("x-sfn-crc32"), std::to_string(Crc32(r.body)));
  EXPECT_NE(r.body.find("\"type\":\"Unauthorized\""), std::string::npos)
      << r.body;
}

TEST_F(HttpServerAuthTest, RequestsWithoutTheTokenGetA401WithWwwAuthenticate) {
  ExpectUnauthorizedOnTheWire(HttpRequest("GET", Url("/counters")));
  ExpectUnauthorizedOnTheWire(HttpRequest(
      "POST", Url("/counter/a"), "1", {{"Authorization", "Bearer not-it"}}));
  ExpectUnauthorizedOnTheWire(
      HttpRequest("GET", Url("/metrics"), "",
                  {{"Authorization", std::string("Basic ") + kToken}}));
  HttpResponse ping = HttpRequest("GET", Url("/ping"));
  EXPECT_EQ(ping.status, 200) << ping.body;
  EXPECT_EQ(ping.Header("www-authenticate"), "");
}

TEST_F(HttpServerAuthTest, TheAuthorizationHeaderReachesTheApi) {
  const std::string bearer = std::string("Bearer ") + kToken;
  HttpResponse r =
      HttpRequest("POST", Url("/counter/a"), "3", {{"Authorization", bearer}});
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(r.Header("www-authenticate"), "");
  // Header names are case-insensitive, and so is the scheme.
  r = HttpRequest("GET", Url("/counter/a/value"), "",
                  {{"authorization", std::string("bearer ") + kToken}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "3");
}

TEST_F(HttpServerAuthTest, ARefusalKeepsTheConnectionAlive) {
  HttpClientOptions options;
  options.reuse_connection = true;
  HttpClient client(options);
  ExpectUnauthorizedOnTheWire(client.Request("GET", Url("/config")));
  HttpResponse r =
      client.Request("GET", Url("/config"), "",
                     {{"Authorization", std::string("Bearer ") + kToken}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.num_connects, 0) << "the 401 closed the connection";
}

TEST_F(HttpServerAuthTest, WithoutATokenNoRequestNeedsOne) {
  Serve("");
  HttpResponse r = HttpRequest("GET", Url("/counters"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("www-authenticate"), "");
  r = HttpRequest("GET", Url("/counters"), "",
                  {{"Authorization", "Bearer anything"}});
  EXPECT_EQ(r.status, 200) << r.body;
}

}  // namespace
}  // namespace dist_counter
