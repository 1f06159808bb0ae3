// Backups: CounterStore::CreateBackup() and ListBackups(), and the
// functions of store/backup.h (names, pruning, restoring), on temporary
// directories.

#include "store/backup.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "store/counter_store.h"
#include "store/fault_file_system.h"
#include "store/store_test_util.h"

namespace dist_counter {
namespace {

namespace fs = std::filesystem;

using test::MustOpen;
using test::ValueOf;

constexpr int kNeverMs = 3600 * 1000;  // a flush interval no test outlives

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string base = ::testing::TempDir();
    if (base.empty() || base.back() != '/') base += '/';
    std::string pattern = base + "backup_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << pattern;
    root_ = pattern;
  }

  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  // A store in <root>/<data>, never flushed unless a test says, backing
  // up into <root>/backups.
  StoreOptions Options(const std::string& data = "db") {
    StoreOptions options;
    options.data_dir = root_ + "/" + data;
    options.challenge_id = "1";
    options.flush_interval_ms = kNeverMs;
    options.close_retry_ms = 0;
    options.backup_dir = root_ + "/backups";
    options.backups_to_keep = 3;
    return options;
  }

  std::vector<std::string> Names(const CounterStore& store) {
    std::vector<BackupInfo> backups;
    Status s = store.ListBackups(&backups);
    EXPECT_TRUE(s.ok()) << s.ToString();
    std::vector<std::string> names;
    for (const BackupInfo& b : backups) names.push_back(b.name);
    return names;
  }

  std::string root_;
};

TEST(BackupNameTest, NamesAreUtcTimesThatSortInTimeOrder) {
  EXPECT_EQ(BackupName(0), "19700101T000000.000Z");
  EXPECT_EQ(BackupName(1796032081254), "20261130T094801.254Z");
  EXPECT_LT(BackupName(1796032081254), BackupName(1796032081255));
  EXPECT_TRUE(IsBackupName("20261130T094801.254Z"));
  EXPECT_TRUE(IsBackupName("20261130T094801.254Z-2"));
  EXPECT_FALSE(IsBackupName("20261130T094801.254Z.partial"));
  EXPECT_FALSE(IsBackupName("20261130T094801.254"));
  EXPECT_FALSE(IsBackupName("20261130X094801.254Z"));
  EXPECT_FALSE(IsBackupName("20261130T094801.254Z-"));
  EXPECT_FALSE(IsBackupName("db"));
}

TEST_F(BackupTest, ABackupHoldsEveryAcknowledgedIncrementEvenUnflushed) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("a", 5).ok());
  ASSERT_TRUE(store->Increment("b", -2).ok());
  BackupInfo info;
  Status s = store->CreateBackup(&info);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(IsBackupName(info.name)) << info.name;
  EXPECT_EQ(info.counters, 2u);
  EXPECT_EQ(info.actor, store->actor_id());
  EXPECT_GT(info.bytes, 0u);
  EXPECT_EQ(info.path, root_ + "/backups/" + info.name);
  // Later increments are not in it.
  ASSERT_TRUE(store->Increment("a", 100).ok());
  ASSERT_TRUE(store->Increment("late", 1).ok());
  const uint64_t old_incarnation = store->incarnation();

  uint64_t next = 0;
  s = RestoreBackup(info.path, root_ + "/restored", &next);
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto restored = MustOpen(Options("restored"));
  ASSERT_TRUE(restored);
  EXPECT_EQ(ValueOf(*restored, "a"), "5");
  EXPECT_EQ(ValueOf(*restored, "b"), "-2");
  EXPECT_EQ(ValueOf(*restored, "late"), "absent");
  EXPECT_EQ(restored->node_id(), store->node_id());
  EXPECT_EQ(restored->incarnation(), next);
  EXPECT_GT(restored->incarnation(), old_incarnation);
  EXPECT_TRUE(restored->Close().ok());
  EXPECT_TRUE(store->Close().ok());
}

TEST_F(BackupTest, ARestoredNodeStartsAboveIncarnationsUsedAfterTheBackup) {
  BackupInfo info;
  uint64_t used_later = 0;
  {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->CreateBackup(&info).ok());
    ASSERT_TRUE(store->Close().ok());
  }
  // The node goes on after the backup and crashes a few times: each start
  // without a clean stop took the next incarnation.
  for (int crash = 0; crash < 3; ++crash) {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    used_later = store->incarnation();
    ASSERT_TRUE(store->Close().ok());
    std::unique_ptr<rocksdb::DB> db;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(
        rocksdb::DB::Open(rocksdb::Options(), Options().data_dir, &raw).ok());
    db.reset(raw);
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), "meta/clean_stop").ok());
  }
  {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    ASSERT_GT(store->incarnation(), used_later);
    used_later = store->incarnation();
    ASSERT_TRUE(store->Close().ok());
  }
  uint64_t next = 0;
  ASSERT_TRUE(RestoreBackup(info.path, root_ + "/restored", &next).ok());
  auto restored = MustOpen(Options("restored"));
  ASSERT_TRUE(restored);
  EXPECT_GT(restored->incarnation(), used_later);
  EXPECT_GE(restored->incarnation(), UnixMicros() - 60 * 1000 * 1000);
  EXPECT_TRUE(restored->Close().ok());
}

TEST_F(BackupTest, BackupsAreDisabledWithoutABackupDir) {
  StoreOptions options = Options();
  options.backup_dir.clear();
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  BackupInfo info;
  EXPECT_TRUE(store->CreateBackup(&info).IsUnavailable());
  std::vector<BackupInfo> backups;
  EXPECT_TRUE(store->ListBackups(&backups).IsUnavailable());
}

TEST_F(BackupTest, OldBackupsArePrunedToBackupsToKeep) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  std::vector<std::string> made;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store->Increment("c" + std::to_string(i), 1).ok());
    BackupInfo info;
    ASSERT_TRUE(store->CreateBackup(&info).ok());
    EXPECT_EQ(info.counters, static_cast<uint64_t>(i + 1));
    made.push_back(info.name);
  }
  for (size_t i = 1; i < made.size(); ++i) EXPECT_NE(made[i - 1], made[i]);
  // The newest three, oldest first.
  EXPECT_EQ(Names(*store),
            std::vector<std::string>(made.begin() + 2, made.end()));
  std::vector<BackupInfo> backups;
  ASSERT_TRUE(store->ListBackups(&backups).ok());
  ASSERT_EQ(backups.size(), 3u);
  EXPECT_EQ(backups[0].counters, 3u);
  EXPECT_EQ(backups[2].counters, 5u);
  EXPECT_FALSE(fs::exists(root_ + "/backups/" + made[0]));
}

TEST_F(BackupTest, PartialBackupsAreNeitherListedNorKept) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  const std::string partial = root_ + "/backups/20200101T000000.000Z.partial";
  const std::string unfinished = root_ + "/backups/20200101T000000.001Z";
  fs::create_directories(partial);
  fs::create_directories(unfinished);  // no BACKUP_INFO: never completed
  EXPECT_TRUE(Names(*store).empty());
  BackupInfo info;
  ASSERT_TRUE(store->CreateBackup(&info).ok());
  EXPECT_EQ(Names(*store), std::vector<std::string>{info.name});
  EXPECT_FALSE(fs::exists(partial));
}

TEST_F(BackupTest, AMissingBackupDirIsAnEmptyList) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  EXPECT_TRUE(Names(*store).empty());
  EXPECT_FALSE(fs::exists(root_ + "/backups"));
}

TEST_F(BackupTest, RestoreRefusesANonEmptyDataDir) {
  BackupInfo info;
  {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Increment("a", 1).ok());
    ASSERT_TRUE(store->CreateBackup(&info).ok());
  }
  // Over the live data dir, and over any other content.
  uint64_t next = 0;
  Status s = RestoreBackup(info.path, Options().data_dir, &next);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find("not empty"), std::string::npos) << s.message();
  fs::create_directories(root_ + "/other");
  { std::ofstream(root_ + "/other/keep.txt") << "mine"; }
  s = RestoreBackup(info.path, root_ + "/other", &next);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ(ReadFile(root_ + "/other/keep.txt"), "mine");
  EXPECT_EQ(fs::directory_iterator(root_ + "/other")->path().filename(),
            "keep.txt");
  // An empty existing directory is fine.
  fs::create_directories(root_ + "/empty");
  s = RestoreBackup(info.path, root_ + "/empty", &next);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE(fs::exists(root_ + "/empty/BACKUP_INFO"));
}

TEST_F(BackupTest, RestoreFillsADirectoryHoldingOnlyLostAndFound) {
  BackupInfo info;
  {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Increment("a", 4).ok());
    ASSERT_TRUE(store->CreateBackup(&info).ok());
    ASSERT_TRUE(store->Close().ok());
  }
  // The root of a freshly made file system, as a mounted volume is.
  ASSERT_TRUE(fs::create_directories(root_ + "/volume/lost+found"));
  uint64_t next = 0;
  Status s = RestoreBackup(info.path, root_ + "/volume", &next);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(fs::is_directory(root_ + "/volume/lost+found"));
  auto restored = MustOpen(Options("volume"));
  ASSERT_TRUE(restored);
  EXPECT_EQ(ValueOf(*restored, "a"), "4");
  EXPECT_TRUE(restored->Close().ok());
  // Anything beside it is still refused.
  ASSERT_TRUE(fs::create_directories(root_ + "/volume2/lost+found"));
  { std::ofstream(root_ + "/volume2/file") << "x"; }
  s = RestoreBackup(info.path, root_ + "/volume2", &next);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
}

TEST_F(BackupTest, ConcurrentBackupsRunOneAtATimeAndEachCompletes) {
  // Backups never overlap: one that started waits for the one running,
  // then takes its own name and checkpoint. Overlapping ones would pick
  // the same name in the same millisecond and fail on each other's
  // checkpoint directory, or prune each other's partial backups.
  constexpr int kBackups = 6;
  StoreOptions options = Options();
  options.backups_to_keep = kBackups;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("a", 1).ok());
  std::atomic<int> waiting{kBackups};
  std::vector<Status> results(kBackups);
  std::vector<BackupInfo> infos(kBackups);
  std::vector<std::thread> threads;
  for (int i = 0; i < kBackups; ++i) {
    threads.emplace_back([&, i] {
      waiting.fetch_sub(1);
      while (waiting.load() > 0) std::this_thread::yield();  // start together
      results[i] = store->CreateBackup(&infos[i]);
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::set<std::string> names;
  for (int i = 0; i < kBackups; ++i) {
    EXPECT_TRUE(results[i].ok()) << i << ": " << results[i].ToString();
    EXPECT_EQ(infos[i].counters, 1u) << i;
    names.insert(infos[i].name);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(kBackups));
  std::vector<std::string> listed = Names(*store);
  EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()), names);
  for (const auto& entry : fs::directory_iterator(options.backup_dir)) {
    EXPECT_TRUE(IsBackupName(entry.path().filename().string()))
        << entry.path();  // no .partial left
  }
  EXPECT_TRUE(store->Close().ok());
}

TEST_F(BackupTest, RestoreRefusesWhatIsNotABackup) {
  fs::create_directories(root_ + "/nothing");
  uint64_t next = 0;
  Status s = RestoreBackup(root_ + "/nothing", root_ + "/restored", &next);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_FALSE(fs::exists(root_ + "/restored"));
}

TEST_F(BackupTest, OpenRefusesABackupDirInsideTheDataDir) {
  StoreOptions options = Options();
  options.backup_dir = options.data_dir + "/backups";
  std::unique_ptr<CounterStore> store;
  Status s = CounterStore::Open(options, &store);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  options.backup_dir = options.data_dir + "/";
  EXPECT_TRUE(CounterStore::Open(options, &store).IsInvalidArgument());
  options.backup_dir = options.data_dir + "-backups";  // a sibling is fine
  EXPECT_TRUE(CounterStore::Open(options, &store).ok());
}

TEST_F(BackupTest, NoBackupIsMadeWhileTheStoreCannotPersist) {
  FaultEnv faults;
  StoreOptions options = Options();
  options.TEST_env = faults.env();
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("a", 1).ok());
  faults.fs()->SetFault(Fault::kNoSpace);
  BackupInfo info;
  Status s = store->CreateBackup(&info);
  EXPECT_TRUE(s.IsStorageUnavailable()) << s.ToString();
  EXPECT_TRUE(Names(*store).empty());
  faults.fs()->SetFault(Fault::kNone);
  s = store->CreateBackup(&info);  // recovers first
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(info.counters, 1u);
  EXPECT_TRUE(store->Close().ok());
}

TEST_F(BackupTest, NoBackupIsMadeOnceTheDataDirIsGone) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("a", 1).ok());
  fs::rename(Options().data_dir, root_ + "/moved");
  BackupInfo info;
  Status s = store->CreateBackup(&info);
  EXPECT_TRUE(s.IsStorageUnavailable()) << s.ToString();
  EXPECT_TRUE(Names(*store).empty());
}

}  // namespace
}  // namespace dist_counter
