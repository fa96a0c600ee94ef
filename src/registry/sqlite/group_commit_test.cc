#include "registry/sqlite/group_commit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "base/random.h"
#include "registry/sqlite/connection.h"

namespace devid::registry::sqlite {
namespace {

// kNeverAlone is a max_defer no test outlasts: a deferred write commits only with another.
constexpr std::chrono::milliseconds kNeverAlone = std::chrono::hours(1);

// Settlement catches a deferred write's outcome for the test to wait on.
struct Settlement {
  std::promise<Status> promise;
  std::future<Status> future = promise.get_future();

  GroupCommitWriter::Settled Callback() {
    return [this](const Status& status) { promise.set_value(status); };
  }
  bool settled() const {
    return future.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }
};

// The suite's name carries "Registry" so it runs with the registry tests.
class SqliteRegistryGroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SecureRandom random;
    dir_ = std::filesystem::path(::testing::TempDir()) / ("devid-group-commit-" + random.Hex(8));
    std::filesystem::create_directories(dir_);
    auto db = Connection::Open(path(), ConnectionOptions{});
    ASSERT_TRUE(db.has_value()) << db.error().message();
    ASSERT_TRUE(
        db->Exec("CREATE TABLE parent (id INTEGER PRIMARY KEY);"
                 "CREATE TABLE t (id INTEGER PRIMARY KEY, parent INTEGER "
                 "  REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"));
    writer_ = std::make_unique<GroupCommitWriter>(std::move(*db), 64, kNeverAlone);
  }

  // UseMaxDefer replaces the writer with one whose deferred writes wait max_defer for company.
  void UseMaxDefer(std::chrono::milliseconds max_defer) {
    writer_.reset();
    auto db = Connection::Open(path(), ConnectionOptions{});
    ASSERT_TRUE(db.has_value()) << db.error().message();
    writer_ = std::make_unique<GroupCommitWriter>(std::move(*db), 64, max_defer);
  }

  void TearDown() override {
    writer_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string path() const { return (dir_ / "t.db").string(); }

  static GroupCommitWriter::Write Insert(int id, bool then_fail = false) {
    return [id, then_fail](Connection& db) -> Status {
      DEVID_TRY(db.Exec("INSERT INTO t (id) VALUES (" + std::to_string(id) + ")"));
      if (then_fail) return std::unexpected(Aborted("write " + std::to_string(id) + " gave up"));
      return Ok();
    };
  }

  std::vector<int64_t> Ids() {
    auto db = Connection::Open(path(), ConnectionOptions{.read_only = true});
    EXPECT_TRUE(db.has_value());
    auto stmt = db->Prepare("SELECT id FROM t ORDER BY id");
    EXPECT_TRUE(stmt.has_value());
    std::vector<int64_t> ids;
    while ((*stmt)->Step().value_or(false)) ids.push_back((*stmt)->ColumnInt64(0));
    return ids;
  }

  // RunBatched runs writes from one thread each while the writer is held busy, so that they all
  // land in the same transaction, and returns their results in order.
  std::vector<Status> RunBatched(const std::vector<GroupCommitWriter::Write>& writes) {
    std::atomic<bool> holding{false};
    std::atomic<bool> release{false};
    std::thread blocker([&] {
      GroupCommitWriter::Write hold = [&](Connection&) -> Status {
        holding = true;
        while (!release.load()) std::this_thread::yield();
        return Ok();
      };
      EXPECT_TRUE(writer_->Run(hold));
    });
    while (!holding.load()) std::this_thread::yield();
    std::vector<Status> results(writes.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < writes.size(); ++i) {
      threads.emplace_back([&, i] { results[i] = writer_->Run(writes[i]); });
    }
    while (writer_->queued() < writes.size()) std::this_thread::yield();
    release = true;
    for (auto& thread : threads) thread.join();
    blocker.join();
    return results;
  }

  std::filesystem::path dir_;
  std::unique_ptr<GroupCommitWriter> writer_;
};

TEST_F(SqliteRegistryGroupCommitTest, Isolates_FailingWriteInBatch) {
  std::vector<Status> results = RunBatched({Insert(1), Insert(2, /*then_fail=*/true), Insert(3)});
  EXPECT_TRUE(results[0].has_value());
  ASSERT_FALSE(results[1].has_value());
  EXPECT_EQ(results[1].error().code(), ErrorCode::kAborted);
  EXPECT_TRUE(results[2].has_value());
  EXPECT_EQ(Ids(), (std::vector<int64_t>{1, 3}));
  GroupCommitWriter::Stats stats = writer_->stats();
  EXPECT_EQ(stats.transactions, 2u);  // the blocker's, then the batch
  EXPECT_EQ(stats.writes, 3u);        // the blocker, 1 and 3
}

TEST_F(SqliteRegistryGroupCommitTest, Rejects_ConstraintViolationAlone) {
  std::vector<Status> results = RunBatched({Insert(1), Insert(1), Insert(2)});
  // The two inserts of id 1 queue in either order: exactly one of them wins.
  ASSERT_NE(results[0].has_value(), results[1].has_value());
  const Status& loser = results[0].has_value() ? results[1] : results[0];
  EXPECT_EQ(loser.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_TRUE(results[2].has_value());
  EXPECT_EQ(Ids(), (std::vector<int64_t>{1, 2}));
}

TEST_F(SqliteRegistryGroupCommitTest, Fails_EveryWriteOfBatchWhenCommitFails) {
  // A deferred foreign key is checked only at COMMIT, so this batch fails as a whole.
  GroupCommitWriter::Write orphan = [](Connection& db) -> Status {
    return db.Exec("INSERT INTO t (id, parent) VALUES (10, 999)");
  };
  std::vector<Status> results = RunBatched({Insert(1), orphan});
  for (const Status& s : results) {
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(s.error().message().find("committing"), std::string::npos) << s.error().message();
  }
  EXPECT_TRUE(Ids().empty());
  // The writer recovers for the next transaction.
  EXPECT_TRUE(writer_->Run(Insert(2)));
  EXPECT_EQ(Ids(), (std::vector<int64_t>{2}));
}

TEST_F(SqliteRegistryGroupCommitTest, Commits_DeferredWriteWithTheNextWrite) {
  Settlement settlement;
  writer_->Defer(Insert(1), settlement.Callback());
  EXPECT_EQ(settlement.future.wait_for(std::chrono::milliseconds(50)),
            std::future_status::timeout);  // it waits for company
  EXPECT_TRUE(Ids().empty());
  ASSERT_TRUE(writer_->Run(Insert(2)));
  EXPECT_TRUE(settlement.future.get());
  EXPECT_EQ(Ids(), (std::vector<int64_t>{1, 2}));
  GroupCommitWriter::Stats stats = writer_->stats();
  EXPECT_EQ(stats.transactions, 1u);
  EXPECT_EQ(stats.writes, 2u);
}

TEST_F(SqliteRegistryGroupCommitTest, Commits_DeferredWriteAloneAfterMaxDefer) {
  UseMaxDefer(std::chrono::milliseconds(20));
  Settlement settlement;
  auto deferred_at = std::chrono::steady_clock::now();
  writer_->Defer(Insert(1), settlement.Callback());
  ASSERT_EQ(settlement.future.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_GE(std::chrono::steady_clock::now() - deferred_at, std::chrono::milliseconds(20));
  EXPECT_TRUE(settlement.future.get());
  EXPECT_EQ(Ids(), (std::vector<int64_t>{1}));
}

TEST_F(SqliteRegistryGroupCommitTest, Flush_WaitsForDeferredWrites) {
  Settlement settlement;
  writer_->Defer(Insert(1), settlement.Callback());
  ASSERT_TRUE(writer_->Flush());
  EXPECT_TRUE(settlement.settled());
  EXPECT_EQ(Ids(), (std::vector<int64_t>{1}));
}

TEST_F(SqliteRegistryGroupCommitTest, Settles_FailingDeferredWriteAlone) {
  Settlement settlement;
  writer_->Defer(Insert(1, /*then_fail=*/true), settlement.Callback());
  ASSERT_TRUE(writer_->Run(Insert(2)));
  Status status = settlement.future.get();
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code(), ErrorCode::kAborted);
  EXPECT_EQ(Ids(), (std::vector<int64_t>{2}));
}

TEST_F(SqliteRegistryGroupCommitTest, Drains_DeferredWritesWhenDestroyed) {
  Settlement settlement;
  writer_->Defer(Insert(1), settlement.Callback());
  writer_.reset();
  EXPECT_TRUE(settlement.settled());
  EXPECT_TRUE(settlement.future.get());
  EXPECT_EQ(Ids(), (std::vector<int64_t>{1}));
}

TEST_F(SqliteRegistryGroupCommitTest, Commits_WrittenWriteWithoutSync_ThenSyncsItWithinMaxDefer) {
  UseMaxDefer(std::chrono::milliseconds(20));
  ASSERT_TRUE(writer_->Run(Insert(1), GroupCommitWriter::Durability::kWritten));
  EXPECT_EQ(Ids(), (std::vector<int64_t>{1}));  // committed: visible to another connection
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (writer_->stats().syncs == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  GroupCommitWriter::Stats stats = writer_->stats();
  EXPECT_EQ(stats.transactions, 1u);
  EXPECT_EQ(stats.syncs, 1u);  // the later sync, not the commit
}

TEST_F(SqliteRegistryGroupCommitTest, Syncs_TransactionWhenAnyOfItsWritesAsksForIt) {
  ASSERT_TRUE(writer_->Run(Insert(1), GroupCommitWriter::Durability::kWritten));
  EXPECT_EQ(writer_->stats().syncs, 0u);              // kNeverAlone: no sync is due yet
  auto results = RunBatched({Insert(2), Insert(3)});  // kSynced, beside the blocker's
  EXPECT_TRUE(results[0] && results[1]);
  EXPECT_GE(writer_->stats().syncs, 1u);
  EXPECT_EQ(Ids(), (std::vector<int64_t>{1, 2, 3}));
}

}  // namespace
}  // namespace devid::registry::sqlite
