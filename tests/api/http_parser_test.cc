// Tests of the HTTP/1.1 request parser (src/api/http_parser.h), without
// sockets.

#include "api/http_parser.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace dist_counter {
namespace {

HttpParseState Parse(const std::string& input, HttpRequestHead* head,
                     size_t max_body = 64 * 1024) {
  HttpParseLimits limits;
  limits.max_body_bytes = max_body;
  return ParseHttpRequest(input, limits, head);
}

TEST(HttpParserTest, ReadsARequestWithABody) {
  const std::string input =
      "POST /counter/a%20b?x=1 HTTP/1.1\r\nHost: h\r\ncontent-LENGTH: 3\r\n"
      "\r\n+42GET";
  HttpRequestHead head;
  ASSERT_EQ(Parse(input, &head), HttpParseState::kComplete);
  EXPECT_EQ(head.method, "POST");
  EXPECT_EQ(head.path, "/counter/a%20b");
  EXPECT_EQ(head.query, "x=1");
  EXPECT_EQ(head.minor_version, 1);
  EXPECT_TRUE(head.keep_alive);
  EXPECT_EQ(head.content_length, 3u);
  EXPECT_EQ(head.body, "+42");
  EXPECT_EQ(head.size, input.size() - 3);  // "GET" is the next request's
}

TEST(HttpParserTest, EveryPrefixIsIncompleteAndTheWholeIsComplete) {
  const std::string input =
      "\r\nPOST /counter/x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n12";
  HttpRequestHead head;
  for (size_t n = 0; n < input.size(); ++n) {
    EXPECT_EQ(Parse(input.substr(0, n), &head), HttpParseState::kIncomplete)
        << n;
  }
  ASSERT_EQ(Parse(input, &head), HttpParseState::kComplete);
  EXPECT_EQ(head.body, "12");
  EXPECT_EQ(head.size, input.size());
  // Once the head is in, only the body is missing.
  EXPECT_EQ(Parse(input.substr(0, input.size() - 1), &head),
            HttpParseState::kIncomplete);
  EXPECT_TRUE(head.head_complete);
}

TEST(HttpParserTest, KeepAliveFollowsTheVersionAndConnectionHeader) {
  struct Case {
    std::string request;
    bool keep_alive;
  };
  const std::vector<Case> cases = {
      {"GET / HTTP/1.1\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nconnection: Keep-Alive, CLOSE\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: upgrade\r\n\r\n", false},
  };
  for (const Case& c : cases) {
    HttpRequestHead head;
    ASSERT_EQ(Parse(c.request, &head), HttpParseState::kComplete) << c.request;
    EXPECT_EQ(head.keep_alive, c.keep_alive) << c.request;
  }
}

TEST(HttpParserTest, AuthorizationIsKeptAsSent) {
  // The head's views point into the input: each input outlives its checks.
  HttpRequestHead head;
  const std::string with =
      "GET / HTTP/1.1\r\nauthorization:  Bearer a b \r\n\r\n";
  ASSERT_EQ(Parse(with, &head), HttpParseState::kComplete);
  EXPECT_EQ(head.authorization, "Bearer a b");
  const std::string without = "GET / HTTP/1.1\r\n\r\n";
  ASSERT_EQ(Parse(without, &head), HttpParseState::kComplete);
  EXPECT_EQ(head.authorization, "");
  ASSERT_EQ(Parse("GET / HTTP/1.1\r\nAuthorization: Bearer a\r\n"
                  "Authorization: Bearer b\r\n\r\n",
                  &head),
            HttpParseState::kError);
  EXPECT_EQ(head.error_status, 400);
}

TEST(HttpParserTest, IdempotencyKeyIsKeptAndMayBeEmpty) {
  // The head's views point into the input: each input outlives its checks.
  HttpRequestHead head;
  const std::string keyed =
      "POST /counter/c HTTP/1.1\r\nidempotency-KEY:  k-1 \r\n"
      "Content-Length: 1\r\n\r\n5";
  ASSERT_EQ(Parse(keyed, &head), HttpParseState::kComplete);
  EXPECT_TRUE(head.has_idempotency_key);
  EXPECT_EQ(head.idempotency_key, "k-1");
  const std::string empty = "POST / HTTP/1.1\r\nIdempotency-Key:\r\n\r\n";
  ASSERT_EQ(Parse(empty, &head), HttpParseState::kComplete);
  EXPECT_TRUE(head.has_idempotency_key);  // the Api refuses it
  EXPECT_EQ(head.idempotency_key, "");
  const std::string none = "GET / HTTP/1.1\r\n\r\n";
  ASSERT_EQ(Parse(none, &head), HttpParseState::kComplete);
  EXPECT_FALSE(head.has_idempotency_key);
  const std::string twice =
      "POST / HTTP/1.1\r\nIdempotency-Key: a\r\n"
      "Idempotency-Key: a\r\n\r\n";
  ASSERT_EQ(Parse(twice, &head), HttpParseState::kError);
  EXPECT_EQ(head.error_status, 400);
}

TEST(HttpParserTest, ExpectContinueIsSeen) {
  HttpRequestHead head;
  ASSERT_EQ(Parse("POST / HTTP/1.1\r\nExpect: 100-Continue\r\n"
                  "Content-Length: 5\r\n\r\n",
                  &head),
            HttpParseState::kIncomplete);
  EXPECT_TRUE(head.head_complete);
  EXPECT_TRUE(head.expect_continue);
}

TEST(HttpParserTest, RefusalsCarryTheirStatus) {
  struct Case {
    std::string request;
    int status;
  };
  const std::vector<Case> cases = {
      {"GARBAGE\r\n\r\n", 400},
      {"GET /ping\r\n\r\n", 400},
      {"GET  /ping HTTP/1.1\r\n\r\n", 400},
      {"GET /ping HTTP/1.1 x\r\n\r\n", 400},
      {"GET ping HTTP/1.1\r\n\r\n", 400},
      {"GET /pi\x01ng HTTP/1.1\r\n\r\n", 400},
      {std::string("GET /pi\0ng HTTP/1.1\r\n\r\n", 24), 400},
      {"GET /ping HTTP/1.x\r\n\r\n", 400},
      {"GET /ping HTTP/9.9\r\n\r\n", 505},
      {"GET /ping HTTP/2.0\r\n\r\n", 505},
      {"FOO /ping HTTP/1.1\r\n\r\n", 501},
      {"get /ping HTTP/1.1\r\n\r\n", 501},
      {"GET /ping HTTP/1.1\r\nNoColonHere\r\n\r\n", 400},
      {"GET /ping HTTP/1.1\r\nBad Name: x\r\n\r\n", 400},
      {"GET /ping HTTP/1.1\r\nName : x\r\n\r\n", 400},
      {"GET /ping HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400},
      {"GET /ping HTTP/1.1\r\nA: b\x01\r\n\r\n", 400},
      {"GET /ping HTTP/1.1\r\nA: b\nC: d\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n1", 400},
      {"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n1", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n1",
       400},
      {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n1", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n1", 413},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411},
      {"POST / HTTP/1.1\r\nContent-Length: 1\r\n"
       "Transfer-Encoding: chunked\r\n\r\n1",
       400},
      {"GET / HTTP/1.1\r\nX: " + std::string(17 * 1024, 'a') + "\r\n\r\n", 431},
      // No blank line yet, but already over the bound.
      {"GET / HTTP/1.1\r\nX: " + std::string(17 * 1024, 'a'), 431},
      // Garbage is refused before a blank line arrives.
      {"\x16\x03\x01\x02", 400},
  };
  for (const Case& c : cases) {
    HttpRequestHead head;
    ASSERT_EQ(Parse(c.request, &head), HttpParseState::kError)
        << c.request.substr(0, 80);
    EXPECT_EQ(head.error_status, c.status) << c.request.substr(0, 80);
    EXPECT_NE(std::string(head.error_type), "");
    EXPECT_NE(std::string(head.error_message), "");
  }
}

TEST(HttpParserTest, BodiesUpToTheLimitAreTaken) {
  HttpRequestHead head;
  const std::string body(100, 'x');
  const std::string request =
      "POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + body;
  EXPECT_EQ(Parse(request, &head, 100), HttpParseState::kComplete);
  EXPECT_EQ(Parse(request, &head, 99), HttpParseState::kError);
  EXPECT_EQ(head.error_status, 413);
}

TEST(HttpParserTest, QueriesAreDecoded) {
  std::map<std::string, std::string> params;
  DecodeQuery("prefix=a%20b+c&limit=5&flag&bad=%zz&&x=1&x=2", &params);
  EXPECT_EQ(params["prefix"], "a b c");
  EXPECT_EQ(params["limit"], "5");
  EXPECT_EQ(params.count("flag"), 1u);
  EXPECT_EQ(params["flag"], "");
  EXPECT_EQ(params["bad"], "%zz");
  EXPECT_EQ(params["x"], "2");
  EXPECT_EQ(params.size(), 5u);
}

TEST(HttpParserTest, CaseInsensitiveCompare) {
  EXPECT_TRUE(EqualsIgnoreCase("Content-Length", "content-length"));
  EXPECT_TRUE(EqualsIgnoreCase("CONNECTION", "connection"));
  EXPECT_FALSE(EqualsIgnoreCase("Connectio", "connection"));
  EXPECT_FALSE(EqualsIgnoreCase("Connection!", "connection"));
  // Only ASCII letters fold: '[' is not '{' and '@' is not '`'.
  EXPECT_FALSE(EqualsIgnoreCase("[", "{"));
  EXPECT_FALSE(EqualsIgnoreCase("@", "`"));
}

}  // namespace
}  // namespace dist_counter
