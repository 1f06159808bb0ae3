// The one list of HTTP statuses: every status the server and the routes
// can answer with has its reason phrase there (so none goes out as an
// empty or made-up phrase, and each has its own request metrics slot).

#include "api/http_status.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "api/routes.h"
#include "util/status.h"

namespace dist_counter {
namespace {

TEST(HttpStatusTest, ListIsAscendingAndEveryRowHasAPhrase) {
  ASSERT_GT(HttpStatusCount(), 0u);
  for (size_t i = 0; i < HttpStatusCount(); ++i) {
    const HttpStatus& row = HttpStatusAt(i);
    EXPECT_FALSE(std::string(row.reason).empty()) << row.code;
    EXPECT_EQ(HttpStatusIndex(row.code), static_cast<int>(i));
    if (i > 0) {
      EXPECT_LT(HttpStatusAt(i - 1).code, row.code);
    }
  }
}

TEST(HttpStatusTest, UnprocessableContentHasItsPhrase) {
  EXPECT_EQ(ReasonPhrase(422), "Unprocessable Content");
  EXPECT_EQ(ReasonPhrase(204), "No Content");
}

TEST(HttpStatusTest, AnUnlistedStatusHasAnEmptyPhrase) {
  EXPECT_EQ(HttpStatusIndex(418), -1);
  EXPECT_EQ(ReasonPhrase(418), "");
}

TEST(HttpStatusTest, EveryStoreStatusMapsToAListedStatus) {
  const Status statuses[] = {
      Status::OK(),
      Status::NotFound("x"),
      Status::InvalidArgument("x"),
      Status::Corruption("x"),
      Status::IOError("x"),
      Status::Unavailable("x"),
      Status::Busy("x"),
      Status::StorageUnavailable("x"),
      Status::ResourceExhausted("x"),
  };
  for (const Status& status : statuses) {
    ApiReply reply;
    ReplyStatus(status, &reply);
    EXPECT_GE(HttpStatusIndex(reply.status), 0)
        << status.ToString() << " -> " << reply.status;
  }
}

// Reads src/api/<file>.
std::string ApiSource(const std::string& file) {
  std::ifstream in(std::string(DC_SOURCE_DIR) + "/src/api/" + file);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(HttpStatusTest, EveryStatusTheSourcesAnswerWithIsListed) {
  // Every literal status handed to a reply or error helper, or set on a
  // reply, in the parser, the server (adapter, connection, reply bytes)
  // and the routes.
  const std::regex literal(
      R"((?:ReplyError|ReplyJson|QueueErrorLocked|Fail)\(\s*([1-5][0-9][0-9])\b)"
      R"(|status = ([1-5][0-9][0-9])\b|HTTP/1\.1 ([1-5][0-9][0-9]) )");
  std::set<int> seen;
  for (const char* file :
       {"routes.cc", "http_server.cc", "http_connection.cc", "http_reply.cc",
        "http_parser.cc", "auth.cc"}) {
    const std::string text = ApiSource(file);
    ASSERT_FALSE(text.empty()) << file;
    for (std::sregex_iterator it(text.begin(), text.end(), literal), end;
         it != end; ++it) {
      for (size_t group = 1; group <= 3; ++group) {
        if ((*it)[group].matched) seen.insert(std::stoi((*it)[group].str()));
      }
    }
  }
  // The scan finds the statuses we know of (so a changed helper name
  // cannot make it find nothing).
  for (int code : {200, 204, 400, 404, 405, 408, 413, 422, 431, 503}) {
    EXPECT_EQ(seen.count(code), 1u) << code;
  }
  for (int code : seen) {
    EXPECT_FALSE(ReasonPhrase(code).empty()) << code << " has no phrase";
  }
}

}  // namespace
}  // namespace dist_counter
