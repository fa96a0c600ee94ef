#include "registry/sqlite/group_commit.h"

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
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;  // guarded by mu
  // Deferred writes only.
  Write owned;
  Settled settled;
  std::chrono::steady_clock::time_point due;  // when it stops waiting for a transaction to join

  bool deferred() const { return settled != nullptr; }
};

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

Status GroupCommitWriter::Run(const Write& write) {
  Pending pending{&write, Ok()};
  {
    std::lock_guard lock(mu_);
    if (stopping_ || broken_) {
      return std::unexpected(Unavailable("writing to the registry: the writer has stopped"));
    }
    queue_.push_back(&pending);
    ++waited_for_;
  }
  wake_.notify_one();
  std::unique_lock lock(pending.mu);
  pending.cv.wait(lock, [&pending] { return pending.done; });
  return std::move(pending.status);
}

void GroupCommitWriter::Defer(Write write, Settled settled) {
  auto pending = std::make_unique<Pending>();
  pending->owned = std::move(write);
  pending->write = &pending->owned;
  pending->settled = std::move(settled);
  pending->due = std::chrono::steady_clock::now() + max_defer_;
  bool first = false;
  {
    std::lock_guard lock(mu_);
    if (!stopping_ && !broken_) {
      first = queue_.empty();
      queue_.push_back(pending.release());
    }
  }
  if (pending != nullptr) {
    pending->settled(
        std::unexpected(Unavailable("writing to the registry: the writer has stopped")));
    return;
  }
  // Only an idle writer needs waking, to learn when the write is due; a busy one looks at the
  // queue before it sleeps again.
  if (first) wake_.notify_one();
}

Status GroupCommitWriter::Flush() {
  // Writes run in queue order, so by the time this one has committed the earlier ones have too.
  return Run([](Connection&) { return Ok(); });
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
      {
        std::unique_lock lock(mu_);
        // Start a transaction when a caller waits for one, when stopping, or when the oldest
        // deferred write has waited long enough for company.
        while (waited_for_ == 0 && !stopping_) {
          if (queue_.empty()) {
            wake_.wait(lock);
          } else if (std::chrono::steady_clock::now() < queue_.front()->due) {
            wake_.wait_until(lock, queue_.front()->due);
          } else {
            break;
          }
        }
        if (queue_.empty()) return;  // stopping, and drained
        while (!queue_.empty() && batch.size() < max_batch_) {
          if (!queue_.front()->deferred()) --waited_for_;
          batch.push_back(queue_.front());
          queue_.pop_front();
        }
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
  {
    std::lock_guard lock(mu_);
    ++stats_.transactions;
    stats_.writes += committed;
  }
  CompleteBatch(batch, txn_begin, batch.size());
}

}  // namespace devid::registry::sqlite
