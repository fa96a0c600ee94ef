#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "base/result.h"
#include "registry/sqlite/connection.h"

namespace devid::registry::sqlite {

// GroupCommitWriter owns a database's only write connection and the thread that uses it. Callers
// hand it write closures; the thread runs everything queued so far in one transaction, each
// closure inside its own savepoint, and commits once, so many concurrent writers share one sync
// of the WAL. A closure that fails is rolled back alone and reports its own error; the others
// commit. Writes nobody waits for (Defer) join the next transaction instead of paying for one of
// their own, and writes that need not survive a power cut at once (Durability::kWritten) skip the
// sync when no write in their transaction needs it. Thread-safe.
class GroupCommitWriter {
 public:
  // Write is one caller's change. It runs on the writer thread inside an open transaction and
  // a savepoint, and must not begin, commit or roll back transactions itself. Returning an error
  // undoes everything it did.
  using Write = std::function<Status(Connection& db)>;
  // Settled receives a deferred write's outcome on the writer thread, after its transaction
  // committed (Ok) or failed. It must not call the writer.
  using Settled = std::function<void(const Status& status)>;

  // Durability is what a committed write survives.
  enum class Durability {
    // kSynced: the WAL is synced before the write settles; it survives a power cut.
    kSynced,
    // kWritten: the WAL is written (it survives the process dying) and synced by the next
    // kSynced commit or checkpoint, at most max_defer later, which a power cut may precede.
    kWritten,
  };

  // Stats counts the writer's work since it started.
  struct Stats {
    uint64_t transactions = 0;  // committed transactions
    uint64_t writes = 0;        // writes that committed
    uint64_t syncs = 0;         // commits that synced the WAL, and syncs of it after kWritten ones
  };

  // GroupCommitWriter takes ownership of db and starts the writer thread. max_batch caps how many
  // writes share one transaction (at least 1); max_defer is how long a deferred write waits for
  // another write to share a transaction with before it gets one of its own, and how long a
  // kWritten commit waits for a sync.
  GroupCommitWriter(Connection db, size_t max_batch, std::chrono::milliseconds max_defer);
  GroupCommitWriter(const GroupCommitWriter&) = delete;
  GroupCommitWriter& operator=(const GroupCommitWriter&) = delete;
  // ~GroupCommitWriter runs every write already queued and syncs them, then stops the thread and
  // closes the connection. No call to Run may be in flight or follow.
  ~GroupCommitWriter();

  // Run queues write and blocks until the transaction that ran it has committed (returning Ok) or
  // it failed: with write's own error, or with the transaction's (for example kUnavailable when
  // the database stays locked, kResourceExhausted when the disk is full). write is only called
  // on the writer thread, before Run returns.
  Status Run(const Write& write, Durability durability = Durability::kSynced);

  // Defer queues write without waiting for it: it runs in the transaction of the next Run, or
  // after at most max_defer in one of its own, and settled then receives its outcome. For writes
  // a crash may lose (a sighting or the record of a token, not a decision) that are not worth a
  // transaction of their own; they are kWritten.
  void Defer(Write write, Settled settled);

  // Flush blocks until every write deferred before it has settled.
  Status Flush();

  // stats returns the counters as of now.
  Stats stats() const;

  // queued returns how many writes wait for the next transaction (for tests and metrics).
  size_t queued() const;

 private:
  struct Pending;

  // Enqueue queues pending (the writer then owns it unless Run waits on it), or returns false
  // when the writer has stopped.
  bool Enqueue(Pending* pending);
  void Loop();
  void RunBatch(std::deque<Pending*>& batch);
  // UseSync makes the next commit sync the WAL, or not.
  Status UseSync(bool sync);
  // SyncWal syncs what kWritten commits left unsynced.
  void SyncWal();
  Status Begin();
  // CloseSavepoint releases the current write's savepoint, first rolling it back unless keep.
  Status CloseSavepoint(bool keep);
  // FailBatch sets error on batch[begin, end) and completes them.
  void FailBatch(std::deque<Pending*>& batch, size_t begin, size_t end, const Error& error);
  // CompleteBatch wakes the callers of batch[begin, end) and clears their slots.
  void CompleteBatch(std::deque<Pending*>& batch, size_t begin, size_t end);
  // Abandon rolls back, fails every write in batch and in the queue, and refuses later writes;
  // the thread is about to end.
  void Abandon(std::deque<Pending*>& batch, const Error& error);

  Connection db_;
  const size_t max_batch_;
  const std::chrono::milliseconds max_defer_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Pending*> queue_;        // guarded by mu_
  size_t waited_for_ = 0;             // guarded by mu_: entries of queue_ a Run caller waits for
  bool stopping_ = false;             // guarded by mu_
  bool broken_ = false;               // guarded by mu_: the thread died and accepts no more writes
  Stats stats_;                       // guarded by mu_
  // Writer thread only: the connection's synchronous setting, and when a kWritten commit left
  // the WAL unsynced, the time it must be synced by.
  bool synchronous_full_ = true;
  std::optional<std::chrono::steady_clock::time_point> sync_due_;

  std::thread thread_;  // last: started after everything it uses
};

}  // namespace devid::registry::sqlite
