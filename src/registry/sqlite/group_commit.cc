#include "registry/sqlite/group_commit.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <utility>

namespace devid::registry::sqlite {

// Pending lives on the calling thread's stack for as long as Run blocks. The writer thread fills
// status, then sets done and signals while holding mu, so the caller (which reads done under mu)
// cannot return and destroy the Pending before the writer has let go of it; after that the writer
// never touches the Pending again.
//
// A mutex and condition variable rather than std::binary_semaphore: libstdc++ 12's semaphore
// spins through sched_yield before it sleeps, and with dozens of handler threads waiting on a
// commit on a small machine those yields took about a seventh of the server's CPU time
// (bench/RESULTS.md).
//
// A deferred write's Pending is on the heap instead: it owns its closure, nobody waits on it, and
// the writer thread settles and deletes it.
struct GroupCommitWriter::Pending {
  const Write* write;
  Status status;
  bool sync;  // its transaction syncs the WAL before it settles
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;  // guarded by mu
  // Deferred writes only.
  Write owned;
  Settled settled;
  std::chrono::steady_clock::time_point due;  // when it stops waiting for company

  bool deferred() const { return settled != nullptr; }
};

namespace {

Error Stopped() { return Unavailable("writing to the registry: the writer has stopped"); }

}  // namespace

GroupCommitWriter::GroupCommitWriter(Connection db, size_t max_batch,
                                     std::chrono::milliseconds max_defer)
    : db_(std::move(db)), max_batch_(max_batch == 0 ? 1 : max_batch), max_defer_(max_defer) {
  thread_ = std::thread([this] { Loop(); });
}

GroupCommitWriter::~GroupCommitWriter() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

bool GroupCommitWriter::Enqueue(Pending* pending) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (stopping_ || broken_) return false;
    // An idle writer needs waking for a write someone waits for, and for a deferred one to learn
    // when it is due; a busy one looks at the queue before it sleeps again.
    wake = !pending->deferred() || queue_.empty();
    queue_.push_back(pending);
    if (!pending->deferred()) ++waited_for_;
  }
  if (wake) wake_.notify_one();
  return true;
}

Status GroupCommitWriter::Run(const Write& write, Durability durability) {
  Pending pending{&write, Ok(), durability == Durability::kSynced};
  if (!Enqueue(&pending)) return std::unexpected(Stopped());
  std::unique_lock lock(pending.mu);
  pending.cv.wait(lock, [&pending] { return pending.done; });
  return std::move(pending.status);
}

void GroupCommitWriter::Defer(Write write, Settled settled) {
  auto pending = std::make_unique<Pending>();
  pending->owned = std::move(write);
  pending->write = &pending->owned;
  pending->sync = false;
  pending->settled = std::move(settled);
  pending->due = std::chrono::steady_clock::now() + max_defer_;
  if (Enqueue(pending.get())) {
    (void)pending.release();
    return;
  }
  pending->settled(std::unexpected(Stopped()));
}

Status GroupCommitWriter::Flush() {
  // Writes run in queue order, so by the time this one has committed the earlier ones have too.
  // Readers need them committed, not synced.
  return Run([](Connection&) { return Ok(); }, Durability::kWritten);
}

GroupCommitWriter::Stats GroupCommitWriter::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

size_t GroupCommitWriter::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void GroupCommitWriter::Loop() {
  std::deque<Pending*> batch;
  // This is a thread entry point: nothing may escape it, and no caller may be left waiting.
  try {
    for (;;) {
      bool sync_now = false;
      {
        std::unique_lock lock(mu_);
        // Start a transaction when a caller waits for one, when stopping, or when the oldest
        // deferred write has waited long enough for company; sync when a kWritten commit has
        // waited long enough for a synced one.
        while (waited_for_ == 0 && !stopping_) {
          std::optional<std::chrono::steady_clock::time_point> next = sync_due_;
          if (!queue_.empty() && (!next || queue_.front()->due < *next)) {
            next = queue_.front()->due;
          }
          if (!next) {
            wake_.wait(lock);
          } else if (std::chrono::steady_clock::now() < *next) {
            wake_.wait_until(lock, *next);
          } else {
            break;
          }
        }
        if (queue_.empty() || (waited_for_ == 0 && !stopping_ &&
                               std::chrono::steady_clock::now() < queue_.front()->due)) {
          sync_now = true;  // nothing to commit yet: the sync is what is due (or the end)
        } else {
          while (!queue_.empty() && batch.size() < max_batch_) {
            if (!queue_.front()->deferred()) --waited_for_;
            batch.push_back(queue_.front());
            queue_.pop_front();
          }
        }
      }
      if (sync_now) {
        if (sync_due_) SyncWal();
        std::lock_guard lock(mu_);
        if (stopping_ && queue_.empty()) return;  // drained and synced
        continue;
      }
      RunBatch(batch);
      batch.clear();
    }
  } catch (const std::exception& e) {
    Abandon(batch, Internal(std::string("registry writer thread failed: ") + e.what()));
  } catch (...) {
    Abandon(batch, Internal("registry writer thread failed: unknown exception"));
  }
}

void GroupCommitWriter::SyncWal() {
  // A failure leaves the sync to the next synced commit or checkpoint, or to another try after
  // max_defer; the writes it covers were already reported committed.
  Status synced = db_.SyncLog();
  if (!synced) {
    spdlog::warn("syncing the registry's log: {}", synced.error().message());
    sync_due_ = std::chrono::steady_clock::now() + max_defer_;
    return;
  }
  sync_due_.reset();
  std::lock_guard lock(mu_);
  ++stats_.syncs;
}

Status GroupCommitWriter::UseSync(bool sync) {
  if (sync == synchronous_full_) return Ok();
  DEVID_TRY(db_.Exec(sync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL"));
  synchronous_full_ = sync;
  return Ok();
}

void GroupCommitWriter::Abandon(std::deque<Pending*>& batch, const Error& error) {
  if (db_.InTransaction()) (void)db_.Exec("ROLLBACK");
  std::lock_guard lock(mu_);
  broken_ = true;
  batch.insert(batch.end(), queue_.begin(), queue_.end());
  queue_.clear();
  waited_for_ = 0;
  FailBatch(batch, 0, batch.size(), error);
}

Status GroupCommitWriter::Begin() {
  // IMMEDIATE takes the write lock now, so a conflict with another process surfaces here (after
  // the busy timeout) rather than half way through the batch.
  DEVID_ASSIGN_OR_RETURN(StatementRef begin, db_.Prepare("BEGIN IMMEDIATE"));
  return begin->Run();
}

Status GroupCommitWriter::CloseSavepoint(bool keep) {
  if (!keep) {
    // ROLLBACK TO undoes the write but leaves its savepoint open; the RELEASE below closes it.
    DEVID_ASSIGN_OR_RETURN(StatementRef rollback, db_.Prepare("ROLLBACK TO write"));
    DEVID_TRY(rollback->Run());
  }
  DEVID_ASSIGN_OR_RETURN(StatementRef release, db_.Prepare("RELEASE write"));
  return release->Run();
}

void GroupCommitWriter::FailBatch(std::deque<Pending*>& batch, size_t begin, size_t end,
                                  const Error& error) {
  for (size_t i = begin; i < end; ++i) {
    if (batch[i] != nullptr) batch[i]->status = std::unexpected(error);
  }
  CompleteBatch(batch, begin, end);
}

void GroupCommitWriter::CompleteBatch(std::deque<Pending*>& batch, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) {
    Pending* p = std::exchange(batch[i], nullptr);
    if (p == nullptr) continue;
    if (p->deferred()) {
      std::unique_ptr<Pending> owned(p);
      owned->settled(owned->status);
      continue;
    }
    std::lock_guard lock(p->mu);
    p->done = true;
    p->cv.notify_one();
  }
}

void GroupCommitWriter::RunBatch(std::deque<Pending*>& batch) {
  // Writes of the transaction now open start at txn_begin; earlier ones are already settled.
  size_t txn_begin = 0;
  bool sync = std::any_of(batch.begin(), batch.end(), [](const Pending* p) { return p->sync; });
  if (auto s = UseSync(sync); !s) {
    FailBatch(batch, 0, batch.size(), s.error().WithContext("choosing the commit's durability"));
    return;
  }
  if (auto s = Begin(); !s) {
    FailBatch(batch, 0, batch.size(), s.error().WithContext("starting a write transaction"));
    return;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    Pending* p = batch[i];
    Status savepoint = [&]() -> Status {
      DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db_.Prepare("SAVEPOINT write"));
      return stmt->Run();
    }();
    if (!savepoint) {
      p->status = std::unexpected(savepoint.error().WithContext("starting a write"));
    } else {
      try {
        p->status = (*p->write)(db_);
      } catch (const std::exception& e) {
        p->status = std::unexpected(Internal(std::string("write failed: ") + e.what()));
      } catch (...) {
        p->status = std::unexpected(Internal("write failed: unknown exception"));
      }
      if (db_.InTransaction()) {
        if (auto s = CloseSavepoint(p->status.has_value()); !s && p->status) {
          p->status = std::unexpected(s.error());
        }
      }
    }
    if (!db_.InTransaction()) {
      // SQLite rolled the whole transaction back by itself (an I/O error, a full disk), taking
      // the writes before this one with it: fail them and carry on in a new transaction. Writes
      // that had already failed keep their own error.
      Error cause =
          p->status ? Internal("the write transaction was rolled back") : p->status.error();
      Error error(cause.code(), "the write transaction was rolled back: " + cause.message());
      for (size_t j = txn_begin; j <= i; ++j) {
        if (batch[j] != nullptr && batch[j]->status) batch[j]->status = std::unexpected(error);
      }
      p->status = std::unexpected(error);
      CompleteBatch(batch, txn_begin, i + 1);
      txn_begin = i + 1;
      if (txn_begin < batch.size()) {
        if (auto s = Begin(); !s) {
          FailBatch(batch, txn_begin, batch.size(),
                    s.error().WithContext("starting a write transaction"));
          return;
        }
      }
    }
  }
  if (txn_begin >= batch.size()) return;

  Status commit = [&]() -> Status {
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db_.Prepare("COMMIT"));
    return stmt->Run();
  }();
  if (!commit) {
    if (db_.InTransaction()) (void)db_.Exec("ROLLBACK");
    FailBatch(batch, txn_begin, batch.size(),
              commit.error().WithContext("committing a write transaction"));
    return;
  }
  uint64_t committed = 0;
  for (size_t i = txn_begin; i < batch.size(); ++i) {
    if (batch[i] != nullptr && batch[i]->status) ++committed;
  }
  if (sync) {
    sync_due_.reset();
  } else if (!sync_due_) {
    sync_due_ = std::chrono::steady_clock::now() + max_defer_;
  }
  {
    std::lock_guard lock(mu_);
    ++stats_.transactions;
    stats_.writes += committed;
    if (sync) ++stats_.syncs;
  }
  CompleteBatch(batch, txn_begin, batch.size());
}

}  // namespace devid::registry::sqlite
