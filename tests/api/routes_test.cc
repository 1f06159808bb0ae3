// Tests of Api (src/api/routes.h) against a real CounterStore on a temporary
// directory, without sockets: every route of the API and the extras.

#include "api/routes.h"

#include <glog/logging.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/cluster_view.h"
#include "crdt/pn_counter.h"
#include "store/counter_store.h"
#include "store/fault_file_system.h"
#include "testing/gated_cluster_view.h"
#include "testing/node_process.h"
#include "testing/warning_collector.h"
#include "util/metrics.h"
#include "util/url.h"

namespace dist_counter {
namespace {

constexpr char kValidation[] =
    "{\"message\":\"Validation Failure\",\"type\":\"ValidationError\"}";
constexpr char kInt64Max[] = "9223372036854775807";
constexpr char kInt64Min[] = "-9223372036854775808";

// A ClusterView whose answers the test sets. RefreshCounter merges
// `remote_state` into the store, as the real one merges peers' states.
class FakeClusterView : public ClusterView {
 public:
  explicit FakeClusterView(CounterStore* store) : store_(store) {}

  Status RefreshCounter(const std::string& name,
                        std::vector<std::string>* unreachable) override {
    std::lock_guard<std::mutex> lock(mu_);
    refreshed.push_back(name);
    if (!down.empty()) {
      unreachable->insert(unreachable->end(), down.begin(), down.end());
      return Status::Unavailable("peers down");
    }
    auto it = remote_state.find(name);
    if (it != remote_state.end()) {
      Status s = store_->Merge(name, it->second, nullptr);
      if (!s.ok()) return s;
    }
    return Status::OK();
  }

  std::vector<std::string> ConnectedNodes() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return connected;
  }

  void PeersChanged(const std::vector<std::string>& peers) override {
    std::lock_guard<std::mutex> lock(mu_);
    peers_changed.push_back(peers);
  }

  // Set by the test before requests; read after.
  std::vector<std::string> down;
  std::vector<std::string> connected;
  std::map<std::string, PnCounter> remote_state;
  std::vector<std::string> refreshed;
  std::vector<std::vector<std::string>> peers_changed;

 private:
  mutable std::mutex mu_;
  CounterStore* const store_;
};

// Splits "a=1&b=x%20y" into decoded pairs, as HttpServer does.
std::map<std::string, std::string> ParseQuery(const std::string& query) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    size_t amp = query.find('&', start);
    if (amp == std::string::npos) amp = query.size();
    const std::string pair = query.substr(start, amp - start);
    const size_t eq = pair.find('=');
    std::string name = pair.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : pair.substr(eq + 1);
    std::string decoded;
    if (PercentDecode(value, /*plus_is_space=*/true, &decoded).ok()) {
      value = decoded;
    }
    out[name] = value;
    start = amp + 1;
  }
  return out;
}

class RoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(OpenStore());
    MakeApi(ApiOptions(), nullptr);
  }

  bool OpenStore() {
    StoreOptions options;
    options.data_dir = dir_.Sub("db");
    options.challenge_id = "1";
    options.flush_interval_ms = 600000;
    options.metrics = &metrics_;
    Status s = CounterStore::Open(options, &store_);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return s.ok();
  }

  // Closes and reopens the store on the same directory, with a new Api.
  void Reopen() {
    api_.reset();
    ASSERT_TRUE(store_->Close().ok());
    store_.reset();
    ASSERT_TRUE(OpenStore());
    MakeApi(ApiOptions(), nullptr);
  }

  void MakeApi(const ApiOptions& options, ClusterView* cluster) {
    api_ = std::make_unique<Api>(options, store_.get(), cluster, &metrics_);
  }

  // Handles `method` on `target` ("/path?query").
  ApiReply Call(const std::string& method, const std::string& target,
                const std::string& body = "") {
    ApiRequest request;
    request.method = method;
    const size_t q = target.find('?');
    request.path = target.substr(0, q);
    if (q != std::string::npos)
      request.query = ParseQuery(target.substr(q + 1));
    request.body = body;
    request.client = "127.0.0.1";  // protected mode lets loopback configure
    ApiReply reply;
    api_->Handle(request, &reply);
    return reply;
  }

  std::string Value(const std::string& encoded_name) {
    ApiReply r = Call("GET", "/counter/" + encoded_name + "/value");
    EXPECT_EQ(r.status, 200) << r.body;
    return r.body;
  }

  // The body of GET /counters with `query` ("" or "?prefix=a&limit=2").
  std::string List(const std::string& query = "") {
    ApiReply r = Call("GET", "/counters" + query);
    EXPECT_EQ(r.status, 200) << query << ": " << r.body;
    return r.body;
  }

  bool Exists(const std::string& name) {
    PnCounter state;
    return store_->Get(name, &state).ok();
  }

  std::vector<std::string> Peers() { return store_->Peers(); }

  test::TempDir dir_;
  Metrics metrics_;  // outlives the store and the Api
  std::unique_ptr<CounterStore> store_;
  std::unique_ptr<Api> api_;
};

// The body of a GET /counters reply listing `names` (which need no JSON
// escapes), with `next` as next_start_after ("": null, the last page).
std::string ListPage(const std::vector<std::string>& names,
                     const std::string& next = "") {
  std::string json = "{\"counters\":[";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) json += ",";
    json += "\"" + names[i] + "\"";
  }
  json += "],\"next_start_after\":";
  json += next.empty() ? "null" : "\"" + next + "\"";
  return json + "}";
}

// Parses `json`, failing the test if it is not a JSON object.
rapidjson::Document ParseObject(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  EXPECT_FALSE(doc.HasParseError()) << json;
  EXPECT_TRUE(doc.IsObject()) << json;
  return doc;
}

// Expects `reply` to be a JSON error with this status and type.
void ExpectError(const ApiReply& reply, int status, const std::string& type) {
  EXPECT_EQ(reply.status, status) << reply.body;
  EXPECT_EQ(reply.content_type, "application/json");
  rapidjson::Document doc;
  doc.Parse(reply.body.c_str(), reply.body.size());
  ASSERT_FALSE(doc.HasParseError()) << reply.body;
  ASSERT_TRUE(doc.IsObject()) << reply.body;
  ASSERT_TRUE(doc.HasMember("message") && doc["message"].IsString())
      << reply.body;
  EXPECT_GT(doc["message"].GetStringLength(), 0u) << reply.body;
  ASSERT_TRUE(doc.HasMember("type") && doc["type"].IsString()) << reply.body;
  EXPECT_EQ(doc["type"].GetString(), type) << reply.body;
  EXPECT_EQ(doc.MemberCount(), 2u) << reply.body;
}

// ---- /ping

TEST_F(RoutesTest, PingAnswersOkToAnyMethod) {
  for (const char* method : {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"}) {
    ApiReply r = Call(method, "/ping", "whatever");
    EXPECT_EQ(r.status, 200) << method;
    EXPECT_EQ(r.body, "{\"status\":\"OK\"}") << method;
    EXPECT_EQ(r.content_type, "application/json") << method;
  }
}

// ---- /config

TEST_F(RoutesTest, ConfigOfAFreshNodeHasNoActors) {
  ApiReply r = Call("GET", "/config");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body,
            "{\"actors\":[],\"challenge_id\":\"1\",\"connected_nodes\":[]}");
}

TEST_F(RoutesTest, PostConfigReplacesThePeerList) {
  ApiReply r = Call("POST", "/config", "{\"actors\":[\"a:1\",\"b\"]}");
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(Call("GET", "/config").body,
            "{\"actors\":[\"a:1\",\"b\"],\"challenge_id\":\"1\","
            "\"connected_nodes\":[]}");

  r = Call("POST", "/config", "{\"actors\":[\"c:2\"]}");
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(Peers(), std::vector<std::string>({"c:2"}));

  r = Call("POST", "/config", "{\"actors\":[]}");
  EXPECT_EQ(r.status, 204);
  EXPECT_TRUE(Peers().empty());
}

TEST_F(RoutesTest, PostConfigRejectsBadInputAndKeepsThePeerList) {
  ASSERT_EQ(Call("POST", "/config", "{\"actors\":[\"good:1\"]}").status, 204);
  const std::vector<std::string> bad = {
      "",
      "{",
      "not json",
      "{\"actors\":[\"a\"]} trailing",
      "[]",
      "[\"a:1\"]",
      "\"a:1\"",
      "42",
      "null",
      "{}",
      "{\"actors\":\"a:1\"}",
      "{\"actors\":{\"a\":1}}",
      "{\"actors\":null}",
      "{\"actors\":[1]}",
      "{\"actors\":[\"a:1\",null]}",
      "{\"actors\":[[\"a:1\"]]}",
      "{\"actors\":[\"a b\"]}",
      "{\"actors\":[\"h:0\"]}",
      "{\"actors\":[\"h:65536\"]}",
      "{\"actors\":[\"h:x\"]}",
      "{\"actors\":[\"h:\"]}",
      "{\"actors\":[\"\"]}",
      "{\"actors\":[\":7777\"]}",
      "{\"actors\":[\"a/b:1\"]}",
      "{\"actors\":[\"a\\u0000b\"]}",
  };
  for (const std::string& body : bad) {
    SCOPED_TRACE(body);
    ExpectError(Call("POST", "/config", body), 400, "InvalidArgument");
    EXPECT_EQ(Peers(), std::vector<std::string>({"good:1"}));
  }
}

TEST_F(RoutesTest, PeerListSurvivesAStoreReopen) {
  ASSERT_EQ(Call("POST", "/config", "{\"actors\":[\"x:1\",\"y:2\"]}").status,
            204);
  Reopen();
  EXPECT_EQ(Call("GET", "/config").body,
            "{\"actors\":[\"x:1\",\"y:2\"],\"challenge_id\":\"1\","
            "\"connected_nodes\":[]}");
}

TEST_F(RoutesTest, ConfigRejectsOtherMethods) {
  ExpectError(Call("PUT", "/config", "{\"actors\":[]}"), 405,
              "MethodNotAllowed");
  ExpectError(Call("DELETE", "/config"), 405, "MethodNotAllowed");
}

// ---- POST /counter/:name

TEST_F(RoutesTest, IncrementsAcceptSignedDecimals) {
  for (const char* body : {"2", "-3", "+5"}) {
    ApiReply r = Call("POST", "/counter/c", body);
    EXPECT_EQ(r.status, 204) << body;
    EXPECT_EQ(r.body, "") << body;
  }
  EXPECT_EQ(Value("c"), "4");
}

TEST_F(RoutesTest, IncrementIgnoresSurroundingWhitespace) {
  // `echo 2 | curl --data-binary @-` sends "2\n".
  EXPECT_EQ(Call("POST", "/counter/c", "2\n").status, 204);
  EXPECT_EQ(Call("POST", "/counter/c", " -1\r\n").status, 204);
  EXPECT_EQ(Value("c"), "1");
}

TEST_F(RoutesTest, IncrementOfZeroCreatesTheCounter) {
  ExpectError(Call("GET", "/counter/z"), 404, "NotFound");
  EXPECT_EQ(Call("POST", "/counter/z", "0").status, 204);
  ApiReply r = Call("GET", "/counter/z");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Value("z"), "0");
  EXPECT_EQ(List(), ListPage({"z"}));
}

TEST_F(RoutesTest, BadIncrementsGetTheValidationErrorAndChangeNothing) {
  const std::vector<std::string> bad = {
      "",
      " ",
      "\n",
      "2.5",
      "A",
      "abc",
      "+",
      "-",
      "--1",
      "+-1",
      "0x10",
      "1e3",
      "2 3",
      "2,3",
      "\"2\"",
      "2a",
      "\xd9\xa3",  // ARABIC-INDIC DIGIT THREE
      "99999999999999999999",
      "9223372036854775808",
      "-9223372036854775809",
      std::string("1\0", 2),
  };
  for (const std::string& body : bad) {
    SCOPED_TRACE("body: \"" + body + "\"");
    ApiReply r = Call("POST", "/counter/c", body);
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.body, kValidation);
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_FALSE(Exists("c"));
  }
}

TEST_F(RoutesTest, Int64LimitsAreValidDeltas) {
  EXPECT_EQ(Call("POST", "/counter/max", kInt64Max).status, 204);
  EXPECT_EQ(Value("max"), kInt64Max);
  EXPECT_EQ(Call("POST", "/counter/min", kInt64Min).status, 204);
  EXPECT_EQ(Value("min"), kInt64Min);
}

TEST_F(RoutesTest, IncrementsBeyondInt64AreRenderedExactly) {
  ASSERT_EQ(Call("POST", "/counter/big", kInt64Max).status, 204);
  ASSERT_EQ(Call("POST", "/counter/big", kInt64Max).status, 204);
  EXPECT_EQ(Value("big"), "18446744073709551614");  // 2^64 - 2
  ASSERT_EQ(Call("POST", "/counter/big", "1").status, 204);
  EXPECT_EQ(Value("big"), "18446744073709551615");  // UINT64_MAX
}

TEST_F(RoutesTest, OverflowOfTheCounterIsAValidationError) {
  // P is an unsigned 64-bit total: 3 x INT64_MAX does not fit.
  ASSERT_EQ(Call("POST", "/counter/p", kInt64Max).status, 204);
  ASSERT_EQ(Call("POST", "/counter/p", kInt64Max).status, 204);
  ApiReply r = Call("POST", "/counter/p", kInt64Max);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, kValidation);
  EXPECT_EQ(Value("p"), "18446744073709551614");

  // N likewise: 2 x 2^63 does not fit.
  ASSERT_EQ(Call("POST", "/counter/n", kInt64Min).status, 204);
  r = Call("POST", "/counter/n", kInt64Min);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, kValidation);
  EXPECT_EQ(Value("n"), kInt64Min);
  // Decrements still fit up to UINT64_MAX.
  EXPECT_EQ(Call("POST", "/counter/n", "-9223372036854775807").status, 204);
  EXPECT_EQ(Value("n"), "-18446744073709551615");
}

// ---- GET /counter/:name/value and /counter/:name

TEST_F(RoutesTest, ValueOfAnUnknownCounterIsZeroAndCreatesNothing) {
  ApiReply r = Call("GET", "/counter/nothing/value");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "0");
  EXPECT_FALSE(Exists("nothing"));
}

TEST_F(RoutesTest, CounterStateShowsThePerActorTotals) {
  ASSERT_EQ(Call("POST", "/counter/s", "5").status, 204);
  ASSERT_EQ(Call("POST", "/counter/s", "-2").status, 204);
  ApiReply r = Call("GET", "/counter/s");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, "{\"name\":\"s\",\"value\":3,\"actors\":{\"" +
                        store_->actor_id() + "\":{\"p\":5,\"n\":2}}}");
}

// ---- DELETE /counter/:name

TEST_F(RoutesTest, DeleteResetsTheCounterAndKeepsItsName) {
  ASSERT_EQ(Call("POST", "/counter/r", "5").status, 204);
  ASSERT_EQ(Call("POST", "/counter/r", "-2").status, 204);
  ApiReply r = Call("DELETE", "/counter/r");
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(Value("r"), "0");
  EXPECT_NE(List().find("\"r\""), std::string::npos) << List();
  // The state shows the baselines the reset set.
  EXPECT_EQ(Call("GET", "/counter/r").body,
            "{\"name\":\"r\",\"value\":0,\"actors\":{\"" + store_->actor_id() +
                "\":{\"p\":5,\"n\":2,\"bp\":5,\"bn\":2}}}");
  // Increments after the reset count; a second reset zeroes them again.
  ASSERT_EQ(Call("POST", "/counter/r", "4").status, 204);
  EXPECT_EQ(Value("r"), "4");
  EXPECT_EQ(Call("DELETE", "/counter/r").status, 204);
  EXPECT_EQ(Value("r"), "0");
  // Resetting a counter already at zero is fine too.
  EXPECT_EQ(Call("DELETE", "/counter/r").status, 204);
  EXPECT_EQ(Value("r"), "0");
}

TEST_F(RoutesTest, DeleteOfAnUnknownCounterIs404AndCreatesNothing) {
  ExpectError(Call("DELETE", "/counter/never"), 404, "NotFound");
  EXPECT_FALSE(Exists("never"));
  EXPECT_EQ(store_->size(), 0u);
}

TEST_F(RoutesTest, DeleteWithABadNameIs400) {
  ExpectError(Call("DELETE", "/counter/a%2Fb"), 400, "ValidationError");
  ExpectError(Call("DELETE", "/counter/"), 400, "ValidationError");
}

TEST_F(RoutesTest, DeleteIsCountedUnderTheCounterRoute) {
  ASSERT_EQ(Call("POST", "/counter/m", "1").status, 204);
  ASSERT_EQ(Call("DELETE", "/counter/m").status, 204);
  ASSERT_EQ(Call("DELETE", "/counter/none").status, 404);
  const std::string text = Call("GET", "/metrics").body;
  EXPECT_NE(text.find("route=\"counter\",status=\"204\""), std::string::npos)
      << text;
  EXPECT_NE(text.find("\ndist_counter_resets_total 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("route=\"counter\",status=\"404\""), std::string::npos)
      << text;
}

TEST_F(RoutesTest, DeleteAfterCloseIsAJson500) {
  ASSERT_EQ(Call("POST", "/counter/c", "1").status, 204);
  ASSERT_TRUE(store_->Close().ok());
  ExpectError(Call("DELETE", "/counter/c"), 500, "InternalError");
}

TEST_F(RoutesTest, CounterStateRendersValuesBeyondInt64) {
  ASSERT_EQ(Call("POST", "/counter/big", kInt64Max).status, 204);
  ASSERT_EQ(Call("POST", "/counter/big", kInt64Max).status, 204);
  ApiReply r = Call("GET", "/counter/big");
  EXPECT_EQ(r.status, 200);
  rapidjson::Document doc = ParseObject(r.body);
  ASSERT_TRUE(doc.HasMember("value"));
  ASSERT_TRUE(doc["value"].IsUint64()) << r.body;
  EXPECT_EQ(doc["value"].GetUint64(), 18446744073709551614u);
}

TEST_F(RoutesTest, ConsistentValueWithoutAClusterEqualsValue) {
  ASSERT_EQ(Call("POST", "/counter/c", "7").status, 204);
  ApiReply r = Call("GET", "/counter/c/consistent_value");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "7");
  r = Call("GET", "/counter/unknown/consistent_value");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "0");
}

// ---- counter names

TEST_F(RoutesTest, NamesArePercentDecoded) {
  ASSERT_EQ(Call("POST", "/counter/a%20b", "1").status, 204);
  EXPECT_TRUE(Exists("a b"));
  EXPECT_EQ(Value("a%20b"), "1");
  // '+' is a plain character in a path.
  ASSERT_EQ(Call("POST", "/counter/a+b", "2").status, 204);
  EXPECT_TRUE(Exists("a+b"));
  EXPECT_EQ(Value("a%2Bb"), "2");
  EXPECT_EQ(List(), ListPage({"a b", "a+b"}));
}

TEST_F(RoutesTest, UnicodeNamesWork) {
  const std::string name = "\xe2\x9c\x93 caf\xc3\xa9";  // "✓ café"
  ASSERT_EQ(Call("POST", "/counter/" + PercentEncode(name), "3").status, 204);
  EXPECT_TRUE(Exists(name));
  EXPECT_EQ(Value(PercentEncode(name)), "3");
  EXPECT_EQ(List(), ListPage({name}));
  ApiReply r = Call("GET", "/counter/" + PercentEncode(name));
  EXPECT_EQ(r.status, 200);
  rapidjson::Document doc = ParseObject(r.body);
  EXPECT_EQ(doc["name"].GetString(), name);
}

TEST_F(RoutesTest, BadNamesAreValidationErrors) {
  const std::vector<std::string> bad = {
      "a%2Fb",
      "a%2fb",
      "%2F",
      "a%00b",
      "%zz",
      "a%4",
      "a%",
      "",
      std::string(201, 'n'),
      [] {  // 67 x "✓" = 201 bytes
        std::string s;
        for (int i = 0; i < 67; ++i) s += "%E2%9C%93";
        return s;
      }(),
  };
  for (const std::string& name : bad) {
    SCOPED_TRACE("name: " + name);
    ApiReply r = Call("POST", "/counter/" + name, "1");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.body, kValidation);
    EXPECT_EQ(Call("GET", "/counter/" + name + "/value").status, 400);
    EXPECT_EQ(Call("GET", "/counter/" + name + "/consistent_value").status,
              400);
    EXPECT_EQ(Call("GET", "/counter/" + name).status, 400);
  }
  EXPECT_EQ(store_->size(), 0u);
}

TEST_F(RoutesTest, NamesOf200BytesAreAccepted) {
  const std::string ascii(200, 'n');
  EXPECT_EQ(Call("POST", "/counter/" + ascii, "1").status, 204);
  EXPECT_EQ(Value(ascii), "1");
  std::string wide, wide_encoded;  // 100 x "é" = 200 bytes
  for (int i = 0; i < 100; ++i) {
    wide += "\xc3\xa9";
    wide_encoded += "%C3%A9";
  }
  EXPECT_EQ(Call("POST", "/counter/" + wide_encoded, "2").status, 204);
  EXPECT_TRUE(Exists(wide));
  EXPECT_EQ(Value(wide_encoded), "2");
}

// ---- unknown routes and wrong methods

TEST_F(RoutesTest, UnknownRoutesAre404Json) {
  for (const char* path :
       {"/", "/nope", "/counter", "/counter/x/nope", "/counter/x/value/more",
        "/ping/extra", "/pingx", "/internal", "/internal/nope",
        "/internal/counter", "/counters/x", "//counter/x", "/Counter/x"}) {
    SCOPED_TRACE(path);
    ExpectError(Call("GET", path), 404, "NotFound");
    ExpectError(Call("POST", path, "1"), 404, "NotFound");
  }
}

TEST_F(RoutesTest, KnownPathsWithAWrongMethodAre405Json) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"PUT", "/counter/x"},
      {"PATCH", "/counter/x"},
      {"POST", "/counter/x/value"},
      {"DELETE", "/counter/x/value"},
      {"POST", "/counter/x/consistent_value"},
      {"PUT", "/config"},
      {"DELETE", "/counters"},
      {"POST", "/metrics"},
      {"POST", "/internal/changes"},
      {"POST", "/internal/counter/x"},
      {"PUT", "/counter/a%2Fb"},
      {"DELETE", "/ping/x"},
      {"DELETE", "/internal/counter/x"},
  };
  for (const auto& [method, path] : cases) {
    SCOPED_TRACE(method + " " + path);
    ApiReply r = Call(method, path, "1");
    if (path == "/ping/x") {
      EXPECT_EQ(r.status, 404);
      continue;
    }
    ExpectError(r, 405, "MethodNotAllowed");
  }
  EXPECT_EQ(store_->size(), 0u);
}

// ---- body size

TEST_F(RoutesTest, BodiesOverTheLimitAre413Json) {
  ApiOptions options;
  options.max_body_bytes = 16;
  MakeApi(options, nullptr);
  EXPECT_EQ(Call("POST", "/counter/c", "0000000000000002").status, 204);
  ApiReply r = Call("POST", "/counter/c", "00000000000000002");
  ExpectError(r, 413, "PayloadTooLarge");
  ExpectError(Call("POST", "/config", std::string(17, ' ')), 413,
              "PayloadTooLarge");
  ExpectError(Call("POST", "/counters", std::string(17, ' ')), 413,
              "PayloadTooLarge");
  EXPECT_EQ(Value("c"), "2");
}

// ---- GET /counters

TEST_F(RoutesTest, ListOfAnEmptyStoreIsEmpty) {
  ApiReply r = Call("GET", "/counters");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, "{\"counters\":[],\"next_start_after\":null}");
}

TEST_F(RoutesTest, ListPaginatesByPrefixAndStartAfter) {
  for (const char* name : {"a3", "b1", "a1", "a2", "ab"}) {
    ASSERT_EQ(Call("POST", std::string("/counter/") + name, "1").status, 204);
  }
  EXPECT_EQ(List(), ListPage({"a1", "a2", "a3", "ab", "b1"}));
  EXPECT_EQ(List("?prefix=a&limit=2"), ListPage({"a1", "a2"}, "a2"));
  EXPECT_EQ(List("?prefix=a&limit=2&start_after=a2"), ListPage({"a3", "ab"}));
  EXPECT_EQ(List("?prefix=a&limit=4"), ListPage({"a1", "a2", "a3", "ab"}));
  EXPECT_EQ(List("?start_after=ab"), ListPage({"b1"}));
  EXPECT_EQ(List("?prefix=zz"), ListPage({}));

  // Walking every page with limit=1 visits every name once.
  std::vector<std::string> seen;
  std::string after;
  for (int page = 0; page < 10; ++page) {
    ApiReply r = Call("GET", "/counters?limit=1&start_after=" + after);
    ASSERT_EQ(r.status, 200);
    rapidjson::Document doc = ParseObject(r.body);
    for (const auto& name : doc["counters"].GetArray()) {
      seen.push_back(name.GetString());
    }
    if (doc["next_start_after"].IsNull()) break;
    after = doc["next_start_after"].GetString();
  }
  EXPECT_EQ(seen, std::vector<std::string>({"a1", "a2", "a3", "ab", "b1"}));
}

TEST_F(RoutesTest, AListPageEndsAfterMaxListBytesOfNames) {
  ApiOptions options;
  options.max_list_bytes = 20;
  MakeApi(options, nullptr);
  for (const char* name : {"aaaa1", "aaaa2", "aaaa3", "aaaa4", "aaaa5"}) {
    ASSERT_EQ(Call("POST", std::string("/counter/") + name, "1").status, 204);
  }
  // 8 bytes a name, quoted with a comma: the third passes 20 bytes.
  EXPECT_EQ(List("?limit=10"), ListPage({"aaaa1", "aaaa2"}, "aaaa2"));
  EXPECT_EQ(List("?limit=10&start_after=aaaa4"), ListPage({"aaaa5"}));
  // A page holds at least one name, however long.
  options.max_list_bytes = 1;
  MakeApi(options, nullptr);
  EXPECT_EQ(List("?limit=10"), ListPage({"aaaa1"}, "aaaa1"));
}

TEST_F(RoutesTest, ListPrefixIsDecoded) {
  ASSERT_EQ(Call("POST", "/counter/a%20b", "1").status, 204);
  ASSERT_EQ(Call("POST", "/counter/ac", "1").status, 204);
  EXPECT_EQ(List("?prefix=a%20"), ListPage({"a b"}));
}

TEST_F(RoutesTest, ListRejectsBadLimits) {
  for (const char* limit :
       {"0", "-1", "abc", "", "1.5", "10001", "99999999999999999999"}) {
    SCOPED_TRACE(limit);
    ExpectError(Call("GET", std::string("/counters?limit=") + limit), 400,
                "InvalidArgument");
  }
  EXPECT_EQ(Call("GET", "/counters?limit=10000").status, 200);
}

// ---- POST /counters (batch)

TEST_F(RoutesTest, BatchAppliesEveryDelta) {
  ApiReply r = Call("POST", "/counters", "{\"a\":2,\"b\":-3,\"c\":0}");
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(Call("POST", "/counters", "{\"a\":5}").status, 204);
  EXPECT_EQ(Value("a"), "7");
  EXPECT_EQ(Value("b"), "-3");
  EXPECT_TRUE(Exists("c"));
  EXPECT_EQ(Call("POST", "/counters", "{}").status, 204);
  EXPECT_EQ(Call("POST", "/counters", "{\"a%20b\":1,\"x y\":1}").status, 204);
  EXPECT_TRUE(Exists("x y"));  // JSON names are used as they are
  EXPECT_TRUE(Exists("a%20b"));
}

TEST_F(RoutesTest, BatchRejectsBadJsonAndChangesNothing) {
  const std::vector<std::string> bad = {
      "",
      "{",
      "nope",
      "[]",
      "[{\"a\":1}]",
      "1",
      "null",
      "{\"ok\":1,\"a\":1.5}",
      "{\"ok\":1,\"a\":\"2\"}",
      "{\"ok\":1,\"a\":true}",
      "{\"ok\":1,\"a\":null}",
      "{\"ok\":1,\"a\":[1]}",
      "{\"ok\":1,\"a\":{\"b\":1}}",
      "{\"ok\":1,\"a\":1e3}",
      "{\"ok\":1,\"a\":18446744073709551615}",
      "{\"ok\":1,\"a\":9223372036854775808}",
      "{\"ok\":1,\"a\":-9223372036854775809}",
      "{\"ok\":1,\"a/b\":1}",
      "{\"ok\":1,\"\":1}",
      "{\"ok\":1,\"" + std::string(201, 'n') + "\":1}",
  };
  for (const std::string& body : bad) {
    SCOPED_TRACE(body);
    ApiReply r = Call("POST", "/counters", body);
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.body, kValidation);
    EXPECT_EQ(store_->size(), 0u);
  }
}

TEST_F(RoutesTest, BatchIsAllOrNothingOnOverflow) {
  ApiReply r =
      Call("POST", "/counters",
           std::string("{\"ok\":1,\"big\":") + kInt64Max +
               ",\"big\":" + kInt64Max + ",\"big\":" + kInt64Max + "}");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, kValidation);
  EXPECT_EQ(store_->size(), 0u);

  ASSERT_EQ(Call("POST", "/counter/big", kInt64Max).status, 204);
  ASSERT_EQ(Call("POST", "/counter/big", kInt64Max).status, 204);
  ASSERT_EQ(Call("POST", "/counter/ok", "10").status, 204);
  r = Call("POST", "/counters", "{\"ok\":1,\"new\":1,\"big\":2}");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, kValidation);
  EXPECT_EQ(Value("ok"), "10");
  EXPECT_EQ(Value("big"), "18446744073709551614");
  EXPECT_FALSE(Exists("new"));

  EXPECT_EQ(Call("POST", "/counters", "{\"ok\":1,\"big\":1}").status, 204);
  EXPECT_EQ(Value("ok"), "11");
  EXPECT_EQ(Value("big"), "18446744073709551615");
}

// ---- /metrics

TEST_F(RoutesTest, MetricsCountRequestsByRouteAndStatus) {
  Call("GET", "/ping");
  Call("GET", "/ping");
  Call("POST", "/counter/c", "x");
  Call("GET", "/nope");
  ApiReply r = Call("GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type.rfind("text/plain", 0), 0u) << r.content_type;
  for (const char* line : {"# TYPE dist_counter_http_requests_total counter",
                           "dist_counter_http_requests_total{route=\"ping\","
                           "status=\"200\"} 2\n",
                           "dist_counter_http_requests_total{route=\"counter\","
                           "status=\"400\"} 1\n",
                           "dist_counter_http_requests_total{route=\"unknown\","
                           "status=\"404\"} 1\n"}) {
    EXPECT_NE(r.body.find(line), std::string::npos) << line << " in " << r.body;
  }
}

// ---- internal routes for peers

TEST_F(RoutesTest, InternalCounterReturnsTheStateAndTheNode) {
  ASSERT_EQ(Call("POST", "/counter/c%20d", "4").status, 204);
  ASSERT_EQ(Call("POST", "/counter/c%20d", "-1").status, 204);
  const std::string node = "{\"challenge_id\":\"1\",\"node_id\":\"" +
                           store_->node_id() + "\",\"actor\":\"" +
                           store_->actor_id() + "\"}";
  ApiReply r = Call("GET", "/internal/counter/c%20d");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"node\":" + node + ",\"name\":\"c d\",\"state\":{\"" +
                        store_->actor_id() + "\":{\"p\":4,\"n\":1}}}");
  r = Call("GET", "/internal/counter/unknown");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"node\":" + node +
                        ",\"name\":\"unknown\",\"state\":{},\"found\":false}");
  EXPECT_EQ(Call("GET", "/internal/counter/a%2Fb").status, 400);
}

TEST_F(RoutesTest, InternalChangesPagesThroughChangedCounters) {
  ASSERT_EQ(Call("POST", "/counter/a", "1").status, 204);
  ASSERT_EQ(Call("POST", "/counter/b", "2").status, 204);
  const std::string instance = std::to_string(store_->instance_id());

  // A cursor from another instance: everything, with reset.
  ApiReply r = Call("GET", "/internal/changes");
  ASSERT_EQ(r.status, 200);
  rapidjson::Document doc = ParseObject(r.body);
  EXPECT_EQ(doc["node"]["challenge_id"].GetString(), std::string("1"));
  EXPECT_EQ(doc["node"]["node_id"].GetString(), store_->node_id());
  EXPECT_EQ(doc["node"]["actor"].GetString(), store_->actor_id());
  EXPECT_EQ(doc["instance"].GetUint64(), store_->instance_id());
  EXPECT_TRUE(doc["reset"].GetBool());
  EXPECT_FALSE(doc["more"].GetBool());
  ASSERT_EQ(doc["counters"].Size(), 2u);
  EXPECT_EQ(doc["counters"][0]["name"].GetString(), std::string("a"));
  EXPECT_EQ(doc["counters"][1]["name"].GetString(), std::string("b"));
  EXPECT_EQ(
      doc["counters"][1]["state"][store_->actor_id().c_str()]["p"].GetUint64(),
      2u);
  const uint64_t next = doc["next"].GetUint64();

  // Nothing new since `next`.
  r = Call("GET", "/internal/changes?instance=" + instance +
                      "&since=" + std::to_string(next));
  doc = ParseObject(r.body);
  EXPECT_FALSE(doc["reset"].GetBool());
  EXPECT_EQ(doc["counters"].Size(), 0u);
  EXPECT_FALSE(doc["more"].GetBool());

  // A change shows up once, after the cursor.
  ASSERT_EQ(Call("POST", "/counter/a", "5").status, 204);
  r = Call("GET", "/internal/changes?instance=" + instance +
                      "&since=" + std::to_string(next));
  doc = ParseObject(r.body);
  ASSERT_EQ(doc["counters"].Size(), 1u);
  EXPECT_EQ(doc["counters"][0]["name"].GetString(), std::string("a"));
  EXPECT_EQ(
      doc["counters"][0]["state"][store_->actor_id().c_str()]["p"].GetUint64(),
      6u);

  // limit=1 pages, saying more follows.
  r = Call("GET",
           "/internal/changes?instance=" + instance + "&since=0&limit=1");
  doc = ParseObject(r.body);
  ASSERT_EQ(doc["counters"].Size(), 1u);
  EXPECT_TRUE(doc["more"].GetBool());
  r = Call("GET", "/internal/changes?instance=" + instance + "&since=" +
                      std::to_string(doc["next"].GetUint64()) + "&limit=1");
  doc = ParseObject(r.body);
  ASSERT_EQ(doc["counters"].Size(), 1u);
  EXPECT_FALSE(doc["more"].GetBool());
}

TEST_F(RoutesTest, InternalChangesRejectsBadParameters) {
  ExpectError(Call("GET", "/internal/changes?since=x"), 400, "InvalidArgument");
  ExpectError(Call("GET", "/internal/changes?instance=-1"), 400,
              "InvalidArgument");
  ExpectError(Call("GET", "/internal/changes?limit=1.5"), 400,
              "InvalidArgument");
}

// ---- a cluster view

TEST_F(RoutesTest, ConsistentValueIncludesWhatTheClusterFetched) {
  FakeClusterView cluster(store_.get());
  MakeApi(ApiOptions(), &cluster);
  ASSERT_EQ(Call("POST", "/counter/a%20b", "2").status, 204);
  PnCounter remote;
  ASSERT_TRUE(remote.Add("peer.1.00000001", 40).ok());
  cluster.remote_state["a b"] = remote;

  EXPECT_EQ(Value("a%20b"), "2");  // /value does not reach the cluster
  EXPECT_TRUE(cluster.refreshed.empty());
  ApiReply r = Call("GET", "/counter/a%20b/consistent_value");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "42");
  EXPECT_EQ(cluster.refreshed, std::vector<std::string>({"a b"}));
  EXPECT_EQ(Value("a%20b"), "42");
}

TEST_F(RoutesTest, ConsistentValueIs503WhenAPeerIsDown) {
  FakeClusterView cluster(store_.get());
  MakeApi(ApiOptions(), &cluster);
  ASSERT_EQ(Call("POST", "/counter/c", "2").status, 204);
  cluster.down = {"b:2", "c:3"};
  ApiReply r = Call("GET", "/counter/c/consistent_value");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, "{\"node_down\":true,\"unreachable\":[\"b:2\",\"c:3\"]}");
  // The plain value still answers.
  EXPECT_EQ(Value("c"), "2");
}

TEST_F(RoutesTest, ConfigShowsConnectedNodesAndTellsTheCluster) {
  FakeClusterView cluster(store_.get());
  MakeApi(ApiOptions(), &cluster);
  cluster.connected = {"a:1"};
  ASSERT_EQ(Call("POST", "/config", "{\"actors\":[\"a:1\",\"b:2\"]}").status,
            204);
  ASSERT_EQ(cluster.peers_changed.size(), 1u);
  EXPECT_EQ(cluster.peers_changed[0], std::vector<std::string>({"a:1", "b:2"}));
  EXPECT_EQ(Call("GET", "/config").body,
            "{\"actors\":[\"a:1\",\"b:2\"],\"challenge_id\":\"1\","
            "\"connected_nodes\":[\"a:1\"]}");
  // A rejected list is not passed on.
  ASSERT_EQ(Call("POST", "/config", "{\"actors\":[\"a b\"]}").status, 400);
  EXPECT_EQ(cluster.peers_changed.size(), 1u);
}

// ---- failures below the API

TEST_F(RoutesTest, StoreFailuresAreJson500sNotCrashes) {
  ASSERT_EQ(Call("POST", "/counter/c", "1").status, 204);
  ASSERT_TRUE(store_->Close().ok());
  ExpectError(Call("POST", "/counter/c", "1"), 500, "InternalError");
  ExpectError(Call("POST", "/counters", "{\"c\":1}"), 500, "InternalError");
  ApiReply r = Call("GET", "/ping");
  EXPECT_EQ(r.status, 200);
}

// ---- HandleAsync

TEST_F(RoutesTest, HandleAsyncAnswersEveryRouteExactlyOnce) {
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"POST", "/counter/a"},
      {"GET", "/counter/a/value"},
      {"GET", "/ping"},
      {"POST", "/counter/bad%2Fname"},
      {"DELETE", "/counter/nope"},
      {"PUT", "/counter/a"}};
  for (const auto& [method, path] : calls) {
    ApiRequest request;
    request.method = method;
    request.path = path;
    request.body = "3";
    int calls_made = 0;
    ApiReply got;
    api_->HandleAsync(request, [&](const ApiReply& reply) {
      ++calls_made;
      got = reply;
    });
    // Not durable: every reply comes before HandleAsync returns.
    EXPECT_EQ(calls_made, 1) << method << " " << path;
    ApiReply sync;
    if (method == "POST" && path == "/counter/a") {
      EXPECT_EQ(got.status, 204);
      continue;
    }
    api_->Handle(request, &sync);
    EXPECT_EQ(got.status, sync.status) << method << " " << path;
  }
  EXPECT_EQ(Value("a"), "3");
}

TEST_F(RoutesTest, HandleAsyncOnDurableStoreAnswersAfterTheSync) {
  api_.reset();
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  StoreOptions options;
  options.data_dir = dir_.Sub("durable");
  options.challenge_id = "1";
  options.flush_interval_ms = 600000;
  options.durable = true;
  ASSERT_TRUE(CounterStore::Open(options, &store_).ok());
  MakeApi(ApiOptions(), nullptr);

  std::mutex mu;
  std::condition_variable cv;
  std::vector<int> statuses;
  const std::vector<std::string> bodies = {"5", "-2", "abc", ""};
  for (const std::string& body : bodies) {
    ApiRequest request;
    request.method = "POST";
    request.path = "/counter/d";
    request.body = body;
    api_->HandleAsync(request, [&](const ApiReply& reply) {
      std::lock_guard<std::mutex> lock(mu);
      statuses.push_back(reply.status);
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30),
                          [&] { return statuses.size() == bodies.size(); }));
  std::sort(statuses.begin(), statuses.end());
  EXPECT_EQ(statuses, (std::vector<int>{204, 204, 400, 400}));
  lock.unlock();
  EXPECT_EQ(Value("d"), "3");
}

TEST_F(RoutesTest, ConsistentReadWaitingOnPeersDoesNotBlockTheCaller) {
  test::GatedClusterView cluster;
  ApiOptions options;
  options.consistent_threads = 1;
  options.max_queued_consistent = 1;
  MakeApi(options, &cluster);
  ASSERT_EQ(Call("POST", "/counter/c", "4").status, 204);

  std::mutex mu;
  std::condition_variable cv;
  std::vector<ApiReply> replies;
  auto record = [&](const ApiReply& reply) {
    std::lock_guard<std::mutex> lock(mu);
    replies.push_back(reply);
    cv.notify_all();
  };
  ApiRequest request;
  request.method = "GET";
  request.path = "/counter/c/consistent_value";
  api_->HandleAsync(request, record);  // runs, blocked on the gate
  cluster.WaitForWaiters(1);
  api_->HandleAsync(request, record);  // queued
  api_->HandleAsync(request, record);  // backlog full: 503 at once
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(replies.size(), 1u);
    ExpectError(replies[0], 503, "Unavailable");
  }
  // Meanwhile plain reads answer at once.
  EXPECT_EQ(Value("c"), "4");

  cluster.Open();
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30),
                          [&] { return replies.size() == 3; }));
  EXPECT_EQ(replies[1].status, 200);
  EXPECT_EQ(replies[1].body, "4");
  EXPECT_EQ(replies[2].status, 200);
  lock.unlock();
  api_.reset();  // before `cluster` goes away
}

// ---- Hostile input: nesting, encodings, duplicates, peer lists

// Parses `json` strictly (well-formed UTF-8 required), failing the test if
// it is not valid JSON.
rapidjson::Document ParseStrict(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(json.c_str(), json.size());
  EXPECT_FALSE(doc.HasParseError()) << json;
  return doc;
}

TEST_F(RoutesTest, DeeplyNestedBodiesAre400NotAStackOverflow) {
  ApiOptions options;
  options.max_body_bytes = 1 << 20;
  MakeApi(options, nullptr);
  const std::string brackets(200000, '[');
  std::string objects;
  for (int i = 0; i < 50000; ++i) objects += "{\"a\":";
  for (const std::string& body : {brackets, objects}) {
    ApiReply r = Call("POST", "/counters", body);
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.body, kValidation);
    ExpectError(Call("POST", "/config", body), 400, "InvalidArgument");
  }
  // Balanced deep nesting too, and just past the bound.
  const std::string balanced =
      std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(Call("POST", "/counters", balanced).status, 400);
  ExpectError(Call("POST", "/config", balanced), 400, "InvalidArgument");
  ExpectError(Call("POST", "/config",
                   "{\"actors\":[\"a:1\"],\"x\":[[[[[[[[[1]]]]]]]]]}"),
              400, "InvalidArgument");
  EXPECT_EQ(store_->size(), 0u);
  EXPECT_TRUE(Peers().empty());
  // Extra members of ordinary depth are still ignored.
  EXPECT_EQ(
      Call("POST", "/config", "{\"actors\":[\"a:1\"],\"x\":[[1]]}").status,
      204);
}

// Percent-encoded names that are not well-formed UTF-8.
const std::vector<std::string>& BadUtf8Names() {
  static const std::vector<std::string> names = {
      "%FF%FE",              // bytes never in UTF-8
      "a%80",                // a lone continuation byte
      "%BFx",                // another
      "%C3",                 // a truncated 2-byte sequence
      "x%E2%82",             // a truncated 3-byte sequence
      "%F0%9F%98",           // a truncated 4-byte sequence
      "%E2%82x",             // truncated, then ASCII
      "%C0%AF",              // overlong '/'
      "%C1%BF",              // overlong
      "%E0%80%80",           // overlong NUL
      "%F0%80%80%80",        // overlong
      "%ED%A0%80",           // a high surrogate (U+D800)
      "%ED%BF%BF",           // a low surrogate (U+DFFF)
      "%ED%A0%BD%ED%B8%80",  // a surrogate pair in CESU-8
      "%F4%90%80%80",        // past U+10FFFF
      "%F8%88%80%80%80",     // a 5-byte form
  };
  return names;
}

TEST_F(RoutesTest, NamesThatAreNotUtf8AreRefusedOnEveryRoute) {
  for (const std::string& name : BadUtf8Names()) {
    SCOPED_TRACE(name);
    ApiReply r = Call("POST", "/counter/" + name, "1");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.body, kValidation);
    for (const std::string action : {"", "/value", "/consistent_value"}) {
      r = Call("GET", "/counter/" + name + action);
      EXPECT_EQ(r.status, 400) << action;
      EXPECT_EQ(r.body, kValidation) << action;
    }
    EXPECT_EQ(Call("GET", "/internal/counter/" + name).status, 400);
    std::string raw;
    ASSERT_TRUE(PercentDecode(name, false, &raw).ok());
    // Raw in a JSON batch body, and as \u escapes of a lone surrogate.
    r = Call("POST", "/counters", "{\"ok\":1,\"" + raw + "\":1}");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.body, kValidation);
    // Unencoded in the request line, as a raw client could send it.
    EXPECT_EQ(Call("POST", "/counter/" + raw, "1").status, 400);
  }
  for (const std::string escaped : {"\\udc00", "\\ud800", "a\\udfffb"}) {
    SCOPED_TRACE(escaped);
    ApiReply r = Call("POST", "/counters",
                      "{\"ok\":1,\"" + std::string(escaped) + "\":1}");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.body, kValidation);
  }
  EXPECT_EQ(store_->size(), 0u);
  EXPECT_EQ(List(), ListPage({}));
}

TEST_F(RoutesTest, MultiByteNamesRoundTripAsValidJson) {
  // 2-, 3- and 4-byte sequences, the edges of the ranges, U+FFFD itself.
  const std::vector<std::string> names = {
      "caf\xC3\xA9",               // café
      "\xE6\x97\xA5\xE6\x9C\xAC",  // 日本
      "\xF0\x9F\x98\x80",          // an emoji (U+1F600)
      "\xC2\x80",                  // U+0080
      "\xED\x9F\xBF",              // U+D7FF, just below the surrogates
      "\xEE\x80\x80",              // U+E000, just above them
      "\xEF\xBF\xBD",              // U+FFFD
      "\xF4\x8F\xBF\xBF",          // U+10FFFF
  };
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    ASSERT_EQ(Call("POST", "/counter/" + PercentEncode(name), "2").status, 204);
    EXPECT_EQ(Value(PercentEncode(name)), "2");
    ApiReply r = Call("GET", "/counter/" + PercentEncode(name));
    ASSERT_EQ(r.status, 200);
    rapidjson::Document doc = ParseStrict(r.body);
    ASSERT_TRUE(doc.IsObject() && doc["name"].IsString());
    EXPECT_EQ(
        std::string(doc["name"].GetString(), doc["name"].GetStringLength()),
        name);
  }
  // The same names through a batch (raw, in JSON).
  std::string batch = "{";
  for (const std::string& name : names) {
    batch += (batch.size() > 1 ? ",\"" : "\"") + name + "\":1";
  }
  ASSERT_EQ(Call("POST", "/counters", batch + "}").status, 204);

  rapidjson::Document doc = ParseStrict(List());
  ASSERT_TRUE(doc.IsObject() && doc["counters"].IsArray());
  std::vector<std::string> listed;
  for (const auto& item : doc["counters"].GetArray()) {
    listed.emplace_back(item.GetString(), item.GetStringLength());
  }
  std::vector<std::string> sorted = names;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(listed, sorted);
  EXPECT_EQ(Value(PercentEncode(names[2])), "3");
}

TEST_F(RoutesTest, ListLeavesOutStoredNamesThatAreNotUtf8) {
  // Only a data directory written before the Api refused such names holds
  // them; put them in behind the Api's back.
  for (const std::string legacy :
       {"b\xFF", "b\xC3", "c\x80", "c\xED\xA0\x80"}) {
    ASSERT_TRUE(store_->Increment(legacy, 1).ok())  // the store's old rule
        << "without such names this test checks nothing";
  }
  for (const std::string name : {"a", "b", "d"}) {
    ASSERT_EQ(Call("POST", "/counter/" + name, "1").status, 204);
  }
  EXPECT_EQ(List(), ListPage({"a", "b", "d"}));
  // Pages fill up past the names left out, and every page is valid JSON.
  EXPECT_EQ(List("?limit=1"), ListPage({"a"}, "a"));
  EXPECT_EQ(List("?limit=1&start_after=a"), ListPage({"b"}, "b"));
  EXPECT_EQ(List("?limit=1&start_after=b"), ListPage({"d"}));
  EXPECT_EQ(List("?limit=2&start_after=b"), ListPage({"d"}));
  EXPECT_EQ(List("?prefix=c"), ListPage({}));
}

TEST_F(RoutesTest, ErrorsQuotingInputStayValidJson) {
  ApiReply r = Call("GET", "/\xFF\xFE");
  EXPECT_EQ(r.status, 404);
  ParseStrict(r.body);
  r = Call("POST", "/config", "{\"actors\":[\"bad host\\u00ff\"]}");
  ExpectError(r, 400, "InvalidArgument");
  ParseStrict(r.body);
}

TEST_F(RoutesTest, BatchRefusesDuplicateNames) {
  for (const std::string body :
       {"{\"d\":1,\"d\":2}", "{\"d\":1,\"e\":1,\"d\":1}",
        "{\"d\":1,\"\\u0064\":2}", "{\"d\":0,\"d\":0}"}) {
    SCOPED_TRACE(body);
    ApiReply r = Call("POST", "/counters", body);
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.body, kValidation);
  }
  EXPECT_EQ(store_->size(), 0u);
  EXPECT_EQ(Call("POST", "/counters", "{\"d\":1,\"D\":2}").status, 204);
  EXPECT_EQ(Value("d"), "1");
  EXPECT_EQ(Value("D"), "2");
}

// A peer list of `count` distinct addresses, as a POST /config body.
std::string ConfigOf(size_t count) {
  std::string body = "{\"actors\":[";
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) body += ",";
    body += "\"peer" + std::to_string(i) + ":7777\"";
  }
  return body + "]}";
}

TEST_F(RoutesTest, PostConfigBoundsTheNumberOfPeers) {
  EXPECT_EQ(ApiOptions().max_peers, 64u);
  ASSERT_EQ(Call("POST", "/config", ConfigOf(64)).status, 204);
  EXPECT_EQ(Peers().size(), 64u);
  ApiReply r = Call("POST", "/config", ConfigOf(65));
  ExpectError(r, 400, "InvalidArgument");
  EXPECT_NE(r.body.find("64"), std::string::npos) << r.body;
  r = Call("POST", "/config", ConfigOf(3000));
  ExpectError(r, 400, "InvalidArgument");
  EXPECT_EQ(Peers().size(), 64u);

  ApiOptions options;
  options.max_peers = 2;
  MakeApi(options, nullptr);
  EXPECT_EQ(Call("POST", "/config", ConfigOf(2)).status, 204);
  r = Call("POST", "/config", ConfigOf(3));
  ExpectError(r, 400, "InvalidArgument");
  EXPECT_NE(r.body.find("at most 2"), std::string::npos) << r.body;
  EXPECT_EQ(Peers().size(), 2u);
}

TEST_F(RoutesTest, PostConfigIsRefusedWhenPeersFollowDns) {
  ASSERT_EQ(Call("POST", "/config", "{\"actors\":[\"good:1\"]}").status, 204);
  ApiOptions options;
  options.peers_dns = "peers.example:7777";
  MakeApi(options, nullptr);
  ApiReply r = Call("POST", "/config", "{\"actors\":[\"other:1\"]}");
  ExpectError(r, 409, "Conflict");
  EXPECT_NE(r.body.find("--peers_dns=peers.example:7777"), std::string::npos)
      << r.body;
  EXPECT_EQ(Peers(), std::vector<std::string>{"good:1"});
  EXPECT_EQ(Call("GET", "/config").status, 200);
}

TEST_F(RoutesTest, PostConfigRefusesDuplicatePeers) {
  ASSERT_EQ(Call("POST", "/config", "{\"actors\":[\"good:1\"]}").status, 204);
  for (const std::string body :
       {"{\"actors\":[\"a:1\",\"a:1\"]}", "{\"actors\":[\"a\",\"a:7777\"]}",
        "{\"actors\":[\"A:1\",\"b:2\",\"a:1\"]}"}) {
    SCOPED_TRACE(body);
    ApiReply r = Call("POST", "/config", body);
    ExpectError(r, 400, "InvalidArgument");
    EXPECT_NE(r.body.find("twice"), std::string::npos) << r.body;
    EXPECT_EQ(Peers(), std::vector<std::string>({"good:1"}));
  }
  EXPECT_EQ(Call("POST", "/config", "{\"actors\":[\"a:1\",\"a:2\"]}").status,
            204);
}

using test::WarningCollector;

TEST_F(RoutesTest, PostConfigIsLoggedWithTheCallerAndBothLists) {
  ASSERT_EQ(Call("POST", "/config", "{\"actors\":[\"old:1\"]}").status, 204);
  WarningCollector warnings;
  ApiRequest request;
  request.method = "POST";
  request.path = "/config";
  request.client = "127.0.0.2";  // loopback: protected mode lets it through
  request.body = ConfigOf(20);
  ApiReply reply;
  api_->Handle(request, &reply);
  ASSERT_EQ(reply.status, 204);
  request.body = "{\"actors\":[]}";
  api_->Handle(request, &reply);
  ASSERT_EQ(reply.status, 204);
  EXPECT_TRUE(Peers().empty());  // allowed: the node stands alone
  request.body = ConfigOf(65);   // refused: no change, no log line
  api_->Handle(request, &reply);
  ASSERT_EQ(reply.status, 400);

  const std::vector<std::string> lines = warnings.Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("127.0.0.2"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("[old:1] -> [peer0:7777, peer1:7777"),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[0].find("12 more]"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0].find("peer8:7777"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("127.0.0.2"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("-> []"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("no peers"), std::string::npos) << lines[1];
}

TEST_F(RoutesTest, BodiesWithANulByteAreRefusedNotCutShort) {
  ApiReply r =
      Call("POST", "/counters", std::string("{\"a\":1}\0{\"b\":2}", 15));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, kValidation);
  EXPECT_EQ(store_->size(), 0u);
  ExpectError(
      Call("POST", "/config", std::string("{\"actors\":[\"a:1\"]}\0x", 20)),
      400, "InvalidArgument");
  EXPECT_TRUE(Peers().empty());
}

// ---- Storage faults, quotas, reads that must not create

// Replaces the fixture's store with one opened with `options` (on the
// fixture's directory) and a new Api.
void ReopenWith(const StoreOptions& options, test::TempDir* dir,
                std::unique_ptr<Api>* api, std::unique_ptr<CounterStore>* store,
                Metrics* metrics) {
  api->reset();
  ASSERT_TRUE((*store)->Close().ok());
  store->reset();
  StoreOptions with_dir = options;
  with_dir.data_dir = dir->Sub("db");
  with_dir.challenge_id = "1";
  with_dir.metrics = metrics;
  Status s = CounterStore::Open(with_dir, store);
  ASSERT_TRUE(s.ok()) << s.ToString();
  *api = std::make_unique<Api>(ApiOptions(), store->get(), nullptr, metrics);
}

TEST_F(RoutesTest, StorageFaultIs503ForIncrementsAndPingWhileReadsGoOn) {
  FaultEnv faults;  // outlives the store: closed at the end of the test
  StoreOptions options;
  options.flush_interval_ms = 600000;
  options.TEST_env = faults.env();
  ReopenWith(options, &dir_, &api_, &store_, &metrics_);
  ASSERT_EQ(Call("POST", "/counter/c", "1").status, 204);
  faults.fs()->SetFault(Fault::kNoSpace);
  ASSERT_TRUE(store_->Flush().IsStorageUnavailable());

  ExpectError(Call("POST", "/counter/c", "1"), 503, "StorageUnavailable");
  ExpectError(Call("POST", "/counter/new", "1"), 503, "StorageUnavailable");
  ExpectError(Call("POST", "/counters", "{\"c\":1}"), 503,
              "StorageUnavailable");
  ApiReply ping = Call("GET", "/ping");
  EXPECT_EQ(ping.status, 503);
  EXPECT_EQ(ping.content_type, "application/json");
  rapidjson::Document doc = ParseObject(ping.body);
  ASSERT_TRUE(doc.HasMember("status") && doc["status"].IsString());
  EXPECT_STREQ(doc["status"].GetString(), "StorageUnavailable");
  ASSERT_TRUE(doc.HasMember("message") && doc["message"].IsString());
  EXPECT_NE(std::string(doc["message"].GetString()).find("No space"),
            std::string::npos)
      << ping.body;
  EXPECT_EQ(doc.MemberCount(), 2u);
  EXPECT_EQ(Value("c"), "1");  // reads go on
  EXPECT_EQ(Call("GET", "/counter/new").status, 404);
  EXPECT_NE(metrics_.Render().find("dist_counter_storage_available 0"),
            std::string::npos);

  faults.fs()->SetFault(Fault::kNone);
  ASSERT_TRUE(store_->Flush().ok());
  ping = Call("GET", "/ping");
  EXPECT_EQ(ping.status, 200);
  EXPECT_EQ(ping.body, "{\"status\":\"OK\"}");
  EXPECT_EQ(Call("POST", "/counter/c", "1").status, 204);
  EXPECT_EQ(Value("c"), "2");
  api_.reset();
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
}

TEST_F(RoutesTest, FailedDurableIncrementIs503AndInvisible) {
  FaultEnv faults;  // outlives the store: closed at the end of the test
  StoreOptions options;
  options.flush_interval_ms = 600000;
  options.durable = true;
  options.TEST_env = faults.env();
  ReopenWith(options, &dir_, &api_, &store_, &metrics_);
  ASSERT_EQ(Call("POST", "/counter/q", "1").status, 204);
  faults.fs()->SetFault(Fault::kSync);
  ApiRequest request;
  request.method = "POST";
  request.path = "/counter/q";
  request.body = "1";
  std::mutex mu;
  std::condition_variable cv;
  bool answered = false;
  ApiReply reply;
  api_->HandleAsync(request, [&](const ApiReply& r) {
    std::lock_guard<std::mutex> lock(mu);
    reply = r;
    answered = true;
    cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(
        cv.wait_for(lock, std::chrono::seconds(30), [&] { return answered; }));
  }
  ExpectError(reply, 503, "StorageUnavailable");
  ExpectError(Call("POST", "/counter/q", "1"), 503, "StorageUnavailable");
  EXPECT_EQ(Value("q"), "1");
  EXPECT_EQ(Call("GET", "/ping").status, 503);
  faults.fs()->SetFault(Fault::kNone);
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_EQ(Call("POST", "/counter/q", "1").status, 204);
  EXPECT_EQ(Value("q"), "2");
  api_.reset();
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
}

TEST_F(RoutesTest, NewCountersBeyondMaxCountersAre507) {
  StoreOptions options;
  options.flush_interval_ms = 600000;
  options.max_counters = 1;
  ReopenWith(options, &dir_, &api_, &store_, &metrics_);
  ASSERT_EQ(Call("POST", "/counter/a", "1").status, 204);
  ExpectError(Call("POST", "/counter/b", "1"), 507, "ResourceExhausted");
  ExpectError(Call("POST", "/counters", "{\"a\":1,\"b\":1}"), 507,
              "ResourceExhausted");
  EXPECT_EQ(Call("POST", "/counters", "{\"a\":1}").status, 204);
  EXPECT_EQ(Call("POST", "/counter/a", "1").status, 204);
  EXPECT_EQ(Value("a"), "3");
  EXPECT_EQ(Call("GET", "/counter/b").status, 404);
  EXPECT_EQ(Call("GET", "/ping").status, 200);  // a quota is not ill health
}

TEST_F(RoutesTest, ConsistentReadOfAnUnknownCounterCreatesNothing) {
  FakeClusterView cluster(store_.get());
  MakeApi(ApiOptions(), &cluster);
  cluster.remote_state["ghost"] = PnCounter();  // what peers answer
  ApiReply r = Call("GET", "/counter/ghost/consistent_value");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "0");
  EXPECT_EQ(cluster.refreshed, std::vector<std::string>({"ghost"}));
  EXPECT_FALSE(Exists("ghost"));
  EXPECT_EQ(Call("GET", "/counter/ghost").status, 404);
  EXPECT_EQ(List(), ListPage({}));
  Reopen();
  EXPECT_FALSE(Exists("ghost"));
}

TEST_F(RoutesTest, StopAnswersQueuedConsistentReadsAndLetsTheRunningOneFinish) {
  test::GatedClusterView cluster;
  ApiOptions options;
  options.consistent_threads = 1;
  options.max_queued_consistent = 10;
  MakeApi(options, &cluster);
  ASSERT_EQ(Call("POST", "/counter/c", "4").status, 204);

  std::mutex mu;
  std::condition_variable cv;
  std::vector<ApiReply> replies;
  auto record = [&](const ApiReply& reply) {
    std::lock_guard<std::mutex> lock(mu);
    replies.push_back(reply);
    cv.notify_all();
  };
  ApiRequest request;
  request.method = "GET";
  request.path = "/counter/c/consistent_value";
  api_->HandleAsync(request, record);  // runs, blocked on the gate
  cluster.WaitForWaiters(1);
  for (int i = 0; i < 3; ++i) api_->HandleAsync(request, record);  // queued

  std::thread stopper([&] { api_->Stop(); });
  {
    // The queued reads are answered at once, without reaching the cluster.
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30),
                            [&] { return replies.size() == 3; }));
    for (const ApiReply& reply : replies) {
      ExpectError(reply, 503, "Unavailable");
      EXPECT_NE(reply.body.find("shutting down"), std::string::npos);
    }
  }
  cluster.Open();
  stopper.join();  // returns once the running read is done
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(replies.size(), 4u);
    EXPECT_EQ(replies[3].status, 200);
    EXPECT_EQ(replies[3].body, "4");
  }
  // Later consistent reads are refused at once; other routes go on.
  api_->HandleAsync(request, record);
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(replies.size(), 5u);
    ExpectError(replies[4], 503, "Unavailable");
  }
  ExpectError(Call("GET", "/counter/c/consistent_value"), 503, "Unavailable");
  EXPECT_EQ(Value("c"), "4");
  EXPECT_EQ(Call("POST", "/counter/c", "1").status, 204);
  api_->Stop();  // idempotent
  api_.reset();  // before `cluster` goes away
}

}  // namespace
}  // namespace dist_counter

// ---- /admin/backup, /admin/backups

namespace dist_counter {
namespace {

class BackupRoutesTest : public RoutesTest {
 protected:
  // Reopens the store with backups into <dir>/backups, keeping two.
  void EnableBackups() {
    api_.reset();
    ASSERT_TRUE(store_->Close().ok());
    store_.reset();
    StoreOptions options;
    options.data_dir = dir_.Sub("db");
    options.challenge_id = "1";
    options.flush_interval_ms = 600000;
    options.backup_dir = dir_.Sub("backups");
    options.backups_to_keep = 2;
    Status s = CounterStore::Open(options, &store_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    MakeApi(ApiOptions(), nullptr);
  }
};

TEST_F(BackupRoutesTest, BackupsAreRefusedWith503WhenDisabled) {
  ExpectError(Call("POST", "/admin/backup"), 503, "Unavailable");
  ExpectError(Call("GET", "/admin/backups"), 503, "Unavailable");
  EXPECT_NE(Call("POST", "/admin/backup").body.find("--backup_dir"),
            std::string::npos);
}

TEST_F(BackupRoutesTest, PostBackupAnswersItsNameAndCounters) {
  EnableBackups();
  ASSERT_EQ(Call("POST", "/counters", R"({"a":1,"b":2})").status, 204);
  ApiReply r = Call("POST", "/admin/backup");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.route, "admin_backup");
  rapidjson::Document doc = ParseObject(r.body);
  ASSERT_TRUE(doc.HasMember("backup") && doc["backup"].IsString());
  const std::string name = doc["backup"].GetString();
  EXPECT_EQ(r.body, "{\"backup\":\"" + name + "\",\"counters\":2}");

  r = Call("GET", "/admin/backups");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.route, "admin_backups");
  doc = ParseObject(r.body);
  ASSERT_TRUE(doc.HasMember("backups") && doc["backups"].IsArray());
  ASSERT_EQ(doc["backups"].Size(), 1u);
  EXPECT_EQ(doc["backups"][0]["name"].GetString(), name);
  EXPECT_EQ(doc["backups"][0]["counters"].GetUint64(), 2u);
  EXPECT_GT(doc["backups"][0]["bytes"].GetUint64(), 0u);

  // Pruned to two.
  ASSERT_EQ(Call("POST", "/admin/backup").status, 200);
  ASSERT_EQ(Call("POST", "/admin/backup").status, 200);
  doc = ParseObject(Call("GET", "/admin/backups").body);
  EXPECT_EQ(doc["backups"].Size(), 2u);
}

TEST_F(BackupRoutesTest, BackupRoutesTakeOneMethodEach) {
  EnableBackups();
  ExpectError(Call("GET", "/admin/backup"), 405, "MethodNotAllowed");
  ExpectError(Call("POST", "/admin/backups"), 405, "MethodNotAllowed");
  ExpectError(Call("DELETE", "/admin/backups"), 405, "MethodNotAllowed");
  ExpectError(Call("GET", "/admin/backup/x"), 404, "NotFound");
}

}  // namespace
}  // namespace dist_counter
