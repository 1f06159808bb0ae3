// Backup and restore across a cluster of real dist_counter processes on
// loopback: a node restored from an old backup, and a node whose data
// directory was put back from a snapshot, hide no increment, here or on
// their peers.
//
// Timings are never asserted; deadlines only bound a failing test.

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "testing/http_client.h"
#include "testing/node_process.h"
#include "testing/wait_until.h"

namespace dist_counter {
namespace {

namespace fs = std::filesystem;

using test::HttpRequest;
using test::HttpResponse;
using test::NodeProcess;
using test::NodeProcessOptions;
using test::TempDir;

constexpr int kConvergeMs = 20000;

bool WaitUntil(const std::function<bool()>& done) {
  return test::WaitUntil(done, kConvergeMs, /*poll_ms=*/50);
}

// Three nodes, challenge ids 1..3, each with every node as a peer; node 1
// (index 0) backs up into <dir>/backups.
class BackupCluster {
 public:
  BackupCluster() {
    std::string actors = "[";
    for (int i = 0; i < 3; ++i) {
      ports_.push_back(test::StablePort());
      actors += "\"127.0.0.1:" + std::to_string(ports_.back()) + "\",";
    }
    actors.back() = ']';
    actors_ = actors;
    for (int i = 0; i < 3; ++i) {
      nodes_.push_back(std::make_unique<NodeProcess>(
          Options(i, dir_.Sub("node" + std::to_string(i + 1)))));
    }
  }

  // Stops every node (expecting exit 0); on failure shows the logs.
  ~BackupCluster() {
    for (auto& node : nodes_) {
      if (node->running()) {
        EXPECT_EQ(node->Stop(), 0) << node->log_path();
      }
    }
    if (!::testing::Test::HasFailure()) return;
    for (auto& node : nodes_) {
      const std::string log = node->ReadLog();
      std::cerr << "---- last lines of " << node->log_path() << "\n"
                << log.substr(log.size() > 6000 ? log.size() - 6000 : 0);
    }
  }

  bool Start() {
    for (auto& node : nodes_) {
      if (!node->Start()) return false;
    }
    for (auto& node : nodes_) {
      if (!node->WaitReady()) return false;
    }
    return true;
  }

  // Node `i` on its port and the cluster's flags, with data in `data_dir`.
  NodeProcessOptions Options(int i, const std::string& data_dir) const {
    NodeProcessOptions options;
    options.data_dir = data_dir;
    options.port = ports_[i];
    options.flags = {"--challenge_id=" + std::to_string(i + 1),
                     "--actors=" + actors_,
                     "--merge_interval_ms=100",
                     "--flush_interval_ms=200",
                     "--peer_timeout_ms=300",
                     "--backup_dir=" + backup_dir()};
    return options;
  }

  // Replaces node `i` (which must be stopped) by one on `data_dir`.
  void Replace(int i, const std::string& data_dir) {
    nodes_[i] = std::make_unique<NodeProcess>(Options(i, data_dir));
  }

  NodeProcess& node(int i) { return *nodes_[i]; }
  std::string backup_dir() const { return dir_.Sub("backups"); }
  const TempDir& dir() const { return dir_; }

  // Node `i`'s /value of `name`, "?" if it did not answer.
  std::string Value(int i, const std::string& name) {
    HttpResponse r = HttpRequest(
        "GET", nodes_[i]->Url("/counter/" + name + "/value"), "", {}, 5000);
    return r.ok() && r.status == 200 ? r.body : "?";
  }

  std::string Values(const std::string& name) {
    std::string text;
    for (int i = 0; i < 3; ++i) text += Value(i, name) + " ";
    return text;
  }

  // Waits until every node reads `expected` for `name`.
  bool WaitAllEqual(const std::string& name, int64_t expected) {
    return WaitUntil([&] {
      for (int i = 0; i < 3; ++i) {
        if (Value(i, name) != std::to_string(expected)) return false;
      }
      return true;
    });
  }

 private:
  TempDir dir_;
  std::vector<uint16_t> ports_;
  std::string actors_;
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
};

// Adds `delta` to `name` on `node`; true if acknowledged (204).
bool Increment(NodeProcess& node, const std::string& name, int64_t delta) {
  HttpResponse r = HttpRequest("POST", node.Url("/counter/" + name),
                               std::to_string(delta), {}, 5000);
  EXPECT_EQ(r.status, 204) << r.error << r.body;
  return r.status == 204;
}

// Runs `dist_counter --restore_from=<backup> --data_dir=<data_dir>` and
// returns its exit status; its output goes to <data_dir>.log.
int Restore(const std::string& backup, const std::string& data_dir) {
  NodeProcessOptions options;
  options.data_dir = data_dir;
  options.flags = {"--restore_from=" + backup};
  NodeProcess restore(options);
  if (!restore.Start()) return -1;
  return restore.Wait(30000);
}

TEST(BackupClusterTest, ARestoredOldBackupHidesNoIncrement) {
  BackupCluster cluster;
  ASSERT_TRUE(cluster.Start());
  int64_t acked = 0;  // every acknowledged increment of "c"
  ASSERT_TRUE(Increment(cluster.node(0), "c", 5));
  ASSERT_TRUE(Increment(cluster.node(1), "c", 3));
  acked += 8;

  HttpResponse r = HttpRequest("POST", cluster.node(0).Url("/admin/backup"));
  ASSERT_EQ(r.status, 200) << r.body;
  rapidjson::Document doc;
  doc.Parse(r.body.data(), r.body.size());
  ASSERT_TRUE(doc.IsObject() && doc.HasMember("backup") &&
              doc["backup"].IsString() && doc.HasMember("counters"))
      << r.body;
  const std::string backup =
      cluster.backup_dir() + "/" + doc["backup"].GetString();
  EXPECT_EQ(doc["counters"].GetUint64(), 1u);
  r = HttpRequest("GET", cluster.node(0).Url("/admin/backups"));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(doc["backup"].GetString()), std::string::npos);

  // Node 1 goes on after the backup, crashes once (so its next
  // incarnation is used too), goes on, and its peers pull all of it.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(Increment(cluster.node(0), "c", 7));
    acked += 7;
  }
  ASSERT_TRUE(cluster.WaitAllEqual("c", acked)) << cluster.Values("c");
  cluster.node(0).Kill9();
  ASSERT_TRUE(cluster.node(0).Start() && cluster.node(0).WaitReady());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(Increment(cluster.node(0), "c", 11));
    acked += 11;
  }
  ASSERT_TRUE(cluster.WaitAllEqual("c", acked)) << cluster.Values("c");
  ASSERT_EQ(cluster.node(0).Stop(), 0);

  // Over its own (non-empty) data dir the restore is refused.
  const std::string original = cluster.node(0).data_dir();
  EXPECT_EQ(Restore(backup, original), 1);  // refused, not crashed
  EXPECT_NE(test::ReadFileOrEmpty(original + ".log").find("not empty"),
            std::string::npos);
  const std::string restored = cluster.dir().Sub("node1-restored");
  ASSERT_EQ(Restore(backup, restored), 0)
      << test::ReadFileOrEmpty(restored + ".log");

  cluster.Replace(0, restored);
  ASSERT_TRUE(cluster.node(0).Start() && cluster.node(0).WaitReady());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(Increment(cluster.node(0), "c", 13));
    ASSERT_TRUE(Increment(cluster.node(0), "after", 1));
    acked += 13;
  }
  // Everything acknowledged, before and after the restore, on every node.
  EXPECT_TRUE(cluster.WaitAllEqual("c", acked)) << cluster.Values("c");
  EXPECT_TRUE(cluster.WaitAllEqual("after", 10)) << cluster.Values("after");
  // The restore chose an incarnation nobody had used: no move was needed.
  EXPECT_EQ(cluster.node(0).ReadLog().find("moved from actor"),
            std::string::npos);
}

TEST(BackupClusterTest, ADataDirPutBackFromASnapshotMovesToANewIncarnation) {
  BackupCluster cluster;
  ASSERT_TRUE(cluster.Start());
  int64_t acked = 0;
  ASSERT_TRUE(Increment(cluster.node(0), "c", 5));
  acked += 5;
  // A snapshot of the stopped node's data dir (a clean stop: the next
  // start keeps the incarnation).
  ASSERT_EQ(cluster.node(0).Stop(), 0);
  const std::string data = cluster.node(0).data_dir();
  const std::string snapshot = cluster.dir().Sub("snapshot");
  std::error_code ec;
  fs::copy(data, snapshot, fs::copy_options::recursive, ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(cluster.node(0).Start() && cluster.node(0).WaitReady());
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(Increment(cluster.node(0), "c", 1));
    acked += 1;
  }
  ASSERT_TRUE(cluster.WaitAllEqual("c", acked)) << cluster.Values("c");
  ASSERT_EQ(cluster.node(0).Stop(), 0);

  // Put back: the same actor, with 5 where the peers hold 12.
  fs::remove_all(data, ec);
  ASSERT_FALSE(ec) << ec.message();
  fs::rename(snapshot, data, ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(cluster.node(0).Start() && cluster.node(0).WaitReady());
  ASSERT_TRUE(WaitUntil([&] {
    return cluster.node(0).ReadLog().find("moved from actor") !=
           std::string::npos;
  })) << "no move to a new incarnation";
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(Increment(cluster.node(0), "c", 1));
    acked += 1;
  }
  EXPECT_TRUE(cluster.WaitAllEqual("c", acked)) << cluster.Values("c");
}

}  // namespace
}  // namespace dist_counter
