// A real node whose storage fails. On a 2 MB tmpfs that fills up:
// increments get 503 StorageUnavailable, /ping fails, reads go on; once
// space is freed the node recovers by itself, and after a clean stop and a
// restart every acknowledged (204) increment is counted (needs root to
// mount; skipped otherwise). With its data dir removed: /ping fails,
// increments get 503, and the stop exits 1 since nothing can be saved.

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "testing/http_client.h"
#include "testing/node_process.h"
#include "testing/wait_until.h"

namespace dist_counter {
namespace test {
namespace {

constexpr int kNames = 200;  // counters each batch raises by one
constexpr size_t kFillerBytes = 1 << 20;

class FullDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
    mount_point_ = tmp_.Sub("mnt");
    ASSERT_EQ(mkdir(mount_point_.c_str(), 0700), 0);
    if (mount("tmpfs", mount_point_.c_str(), "tmpfs", 0, "size=2m") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs: " << std::strerror(errno);
    }
    mounted_ = true;
  }

  void TearDown() override {
    node_.reset();  // kills a node still running
    if (mounted_) umount2(mount_point_.c_str(), MNT_DETACH);
  }

  // A batch body adding 1 to each of the kNames counters; names are long
  // so that the disk fills fast.
  static std::string BatchBody() {
    std::string body = "{";
    for (int i = 0; i < kNames; ++i) {
      if (i > 0) body += ",";
      char prefix[16];
      std::snprintf(prefix, sizeof(prefix), "%04d", i);
      body += "\"" + std::string(prefix) + std::string(140, 'x') + "\":1";
    }
    return body + "}";
  }

  static std::string Name(int i) {
    char prefix[16];
    std::snprintf(prefix, sizeof(prefix), "%04d", i);
    return std::string(prefix) + std::string(140, 'x');
  }

  // The "type" (or "status") member of a JSON error body, or "".
  static std::string JsonMember(const std::string& body, const char* key) {
    rapidjson::Document doc;
    doc.Parse(body.c_str(), body.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember(key) ||
        !doc[key].IsString()) {
      return "";
    }
    return doc[key].GetString();
  }

  TempDir tmp_;
  std::string mount_point_;
  bool mounted_ = false;
  std::unique_ptr<NodeProcess> node_;
};

class FullDiskModeTest : public FullDiskTest,
                         public ::testing::WithParamInterface<bool> {};

INSTANTIATE_TEST_SUITE_P(Modes, FullDiskModeTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Durable" : "Default";
                         });

TEST_P(FullDiskModeTest, RefusesThenRecoversAndLosesNothingAcknowledged) {
  const std::string filler = mount_point_ + "/filler";
  {
    std::ofstream out(filler, std::ios::binary);
    out << std::string(kFillerBytes, 'f');
    ASSERT_TRUE(out.good());
  }
  NodeProcessOptions options;
  options.data_dir = mount_point_ + "/db";
  options.flags = {"--challenge_id=1", "--flush_interval_ms=20"};
  if (GetParam()) options.flags.push_back("--durable");
  node_ = std::make_unique<NodeProcess>(options);
  ASSERT_TRUE(node_->StartAndWait());

  const std::string body = BatchBody();
  HttpClient client(HttpClientOptions{/*reuse_connection=*/true});
  int acknowledged = 0;
  HttpResponse refused;
  ASSERT_TRUE(WaitUntil(
      [&] {
        HttpResponse r = client.Request("POST", node_->Url("/counters"), body);
        if (r.status == 204) ++acknowledged;
        if (r.status == 204 || !r.ok()) return false;
        refused = r;
        return true;
      },
      120000, 1));
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(JsonMember(refused.body, "type"), "StorageUnavailable")
      << refused.body;
  ASSERT_GT(acknowledged, 0);

  HttpResponse ping = client.Request("GET", node_->Url("/ping"));
  EXPECT_EQ(ping.status, 503) << ping.body;
  EXPECT_EQ(JsonMember(ping.body, "status"), "StorageUnavailable");
  HttpResponse single =
      client.Request("POST", node_->Url("/counter/" + Name(0)), "1");
  EXPECT_EQ(single.status, 503) << single.body;
  // Reads go on, and show only what was acknowledged (in durable mode,
  // not the refused batch either).
  HttpResponse value =
      client.Request("GET", node_->Url("/counter/" + Name(0) + "/value"));
  EXPECT_EQ(value.status, 200);
  EXPECT_EQ(value.body, std::to_string(acknowledged));

  ASSERT_EQ(unlink(filler.c_str()), 0);
  ASSERT_TRUE(WaitUntil([&] {
    return client.Request("GET", node_->Url("/ping")).status == 200;
  }));
  for (int i = 0; i < 3; ++i) {
    HttpResponse r = client.Request("POST", node_->Url("/counters"), body);
    ASSERT_EQ(r.status, 204) << r.body;
    ++acknowledged;
  }
  ASSERT_EQ(node_->Stop(), 0) << node_->ReadLog();

  ASSERT_TRUE(node_->StartAndWait());
  for (int i = 0; i < kNames; ++i) {
    HttpResponse r =
        client.Request("GET", node_->Url("/counter/" + Name(i) + "/value"));
    ASSERT_EQ(r.body, std::to_string(acknowledged)) << Name(i);
  }
  EXPECT_EQ(node_->Stop(), 0);
}

TEST(RemovedDataDirTest, HealthFailsWritesAreRefusedAndTheStopFails) {
  TempDir tmp;
  NodeProcessOptions options;
  options.data_dir = tmp.Sub("db");
  options.flags = {"--challenge_id=1", "--flush_interval_ms=100"};
  NodeProcess node(options);
  ASSERT_TRUE(node.StartAndWait());
  HttpClient client;
  ASSERT_EQ(client.Request("POST", node.Url("/counter/c"), "2").status, 204);
  std::filesystem::remove_all(options.data_dir);
  ASSERT_TRUE(WaitUntil(
      [&] { return client.Request("GET", node.Url("/ping")).status == 503; }));
  HttpResponse r = client.Request("POST", node.Url("/counter/c"), "1");
  EXPECT_EQ(r.status, 503) << r.body;
  r = client.Request("GET", node.Url("/counter/c/value"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "2");
  EXPECT_EQ(node.Stop(), 1);
  const std::string log = node.ReadLog();
  EXPECT_NE(log.find("is gone"), std::string::npos) << log;
  EXPECT_NE(log.find("final flush failed"), std::string::npos) << log;
}

TEST(RemovedDataDirTest, DurableIncrementAfterTheRemovalIsRefused) {
  TempDir tmp;
  NodeProcessOptions options;
  options.data_dir = tmp.Sub("db");
  options.flags = {"--challenge_id=1", "--durable"};
  NodeProcess node(options);
  ASSERT_TRUE(node.StartAndWait());
  HttpClient client;
  ASSERT_EQ(client.Request("POST", node.Url("/counter/c"), "2").status, 204);
  std::filesystem::remove_all(options.data_dir);
  // No wait for the periodic check: the very next sync must fail.
  HttpResponse r = client.Request("POST", node.Url("/counter/c"), "1");
  EXPECT_EQ(r.status, 503) << r.body;
  r = client.Request("GET", node.Url("/counter/c/value"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "2");
  EXPECT_EQ(client.Request("GET", node.Url("/ping")).status, 503);
  EXPECT_EQ(node.Stop(), 1);
  const std::string log = node.ReadLog();
  EXPECT_NE(log.find("is gone"), std::string::npos) << log;
}

}  // namespace
}  // namespace test
}  // namespace dist_counter
