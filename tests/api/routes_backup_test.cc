// POST /admin/backup when the backup cannot be made: 503
// StorageUnavailable while the node cannot persist, 500 when the backup
// itself fails (its directory, its checkpoint), and concurrent requests each
// answered with their own backup (a second request waits for the first).

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <set>
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

class RoutesBackupTest : public ::testing::Test {
 protected:
  // Opens the store on the fault-injecting file system, backing up into
  // `backup_dir`, and the Api over it.
  void Open(const std::string& backup_dir) {
    StoreOptions options;
    options.data_dir = dir_.Sub("db");
    options.challenge_id = "1";
    options.flush_interval_ms = 600000;
    options.close_retry_ms = 0;
    options.backup_dir = backup_dir;
    options.backups_to_keep = 10;
    options.TEST_env = faults_.env();
    Status s = CounterStore::Open(options, &store_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    api_ =
        std::make_unique<Api>(ApiOptions(), store_.get(), nullptr, &metrics_);
  }

  ApiReply Call(const std::string& method, const std::string& path,
                const std::string& body = "") {
    ApiRequest request;
    request.method = method;
    request.path = path;
    request.body = body;
    request.client = "127.0.0.1";  // protected mode lets loopback in
    ApiReply reply;
    api_->Handle(request, &reply);
    return reply;
  }

  FaultEnv faults_;  // outlives the store
  test::TempDir dir_;
  Metrics metrics_;
  std::unique_ptr<CounterStore> store_;
  std::unique_ptr<Api> api_;
};

TEST_F(RoutesBackupTest, BackupWhileTheNodeCannotPersistIs503) {
  ASSERT_NO_FATAL_FAILURE(Open(dir_.Sub("backups")));
  ASSERT_EQ(Call("POST", "/counter/a", "1").status, 204);
  faults_.fs()->SetFault(Fault::kNoSpace);
  ApiReply r = Call("POST", "/admin/backup");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("\"type\":\"StorageUnavailable\""), std::string::npos)
      << r.body;
  EXPECT_EQ(r.route, "admin_backup");
  faults_.fs()->SetFault(Fault::kNone);
  r = Call("POST", "/admin/backup");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(store_->Close().ok());
}

TEST_F(RoutesBackupTest, BackupThatCannotBeMadeIs500) {
  // The backup dir cannot be made: a plain file sits on its path.
  const std::string file = dir_.Sub("not-a-dir");
  { std::ofstream(file) << "x"; }
  ASSERT_NO_FATAL_FAILURE(Open(file + "/backups"));
  ASSERT_EQ(Call("POST", "/counter/a", "1").status, 204);
  ApiReply r = Call("POST", "/admin/backup");
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_NE(r.body.find("\"type\":\"InternalError\""), std::string::npos)
      << r.body;
  // The node itself is fine.
  EXPECT_EQ(Call("GET", "/ping").status, 200);
  EXPECT_EQ(Call("POST", "/counter/a", "1").status, 204);
  EXPECT_TRUE(store_->Close().ok());
}

TEST_F(RoutesBackupTest, ACheckpointThatFailsIs500) {
  ASSERT_NO_FATAL_FAILURE(Open(dir_.Sub("backups")));
  ASSERT_EQ(Call("POST", "/counter/a", "1").status, 204);
  ASSERT_TRUE(store_->Flush(/*sync=*/true).ok());
  // Nothing left to flush, so the backup gets as far as the checkpoint,
  // whose files cannot be written.
  faults_.fs()->SetFault(Fault::kIOError);
  ApiReply r = Call("POST", "/admin/backup");
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_NE(r.body.find("\"type\":\"InternalError\""), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("checkpoint"), std::string::npos) << r.body;
  // RocksDB's own flush failed with it, so the node says it cannot
  // persist, and recovers once the disk works again.
  EXPECT_EQ(Call("GET", "/ping").status, 503);
  faults_.fs()->SetFault(Fault::kNone);
  ASSERT_TRUE(test::WaitUntil([&] { return store_->Health().ok(); }));
  EXPECT_EQ(Call("GET", "/ping").status, 200);
  r = Call("POST", "/admin/backup");
  EXPECT_EQ(r.status, 200) << r.body;
  Status s = store_->Close();
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST_F(RoutesBackupTest, ConcurrentRequestsEachGetTheirOwnBackup) {
  constexpr int kRequests = 4;
  ASSERT_NO_FATAL_FAILURE(Open(dir_.Sub("backups")));
  ASSERT_EQ(Call("POST", "/counter/a", "1").status, 204);
  std::atomic<int> waiting{kRequests};
  std::vector<ApiReply> replies(kRequests);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRequests; ++i) {
    threads.emplace_back([&, i] {
      waiting.fetch_sub(1);
      while (waiting.load() > 0) std::this_thread::yield();  // start together
      replies[i] = Call("POST", "/admin/backup");
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::set<std::string> bodies;
  for (const ApiReply& r : replies) {
    EXPECT_EQ(r.status, 200) << r.body;
    bodies.insert(r.body);  // {"backup":"<its own name>","counters":1}
  }
  EXPECT_EQ(bodies.size(), static_cast<size_t>(kRequests));
  EXPECT_TRUE(store_->Close().ok());
}

}  // namespace
}  // namespace dist_counter
