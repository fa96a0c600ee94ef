#pragma once

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"
#include "registry/sqlite/connection.h"

namespace devid::registry::sqlite {

// ReadPool lends read-only connections to one database file, opening them on demand up to a
// limit; in WAL mode each reads the last committed state without blocking the writer or each
// other. Each connection keeps its own prepared statements. Thread-safe.
class ReadPool {
 public:
  // Lease is one borrowed connection, returned to the pool when the Lease is destroyed. It must
  // not outlive the pool. Move-only.
  class Lease {
   public:
    Lease(ReadPool* pool, std::unique_ptr<Connection> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (conn_ != nullptr) pool_->Return(std::move(conn_));
    }
    Connection& operator*() const { return *conn_; }
    Connection* operator->() const { return conn_.get(); }

   private:
    ReadPool* pool_;
    std::unique_ptr<Connection> conn_;
  };

  // ReadPool opens nothing yet; max_size (at least 1) caps the connections open at once.
  ReadPool(std::string path, ConnectionOptions options, size_t max_size);
  ReadPool(const ReadPool&) = delete;
  ReadPool& operator=(const ReadPool&) = delete;

  // Acquire lends an idle connection, opens a new one while under the limit, or waits for one to
  // be returned. It fails with Connection::Open's error.
  Result<Lease> Acquire();
  // TryAcquire is Acquire that never waits: it fails with kResourceExhausted when every
  // connection is lent and the pool is at its limit.
  Result<Lease> TryAcquire();

 private:
  Result<Lease> Take(bool wait);
  void Return(std::unique_ptr<Connection> conn);

  const std::string path_;
  const ConnectionOptions options_;
  const size_t max_size_;

  std::mutex mu_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_
  size_t open_ = 0;                                // guarded by mu_: idle and lent
};

}  // namespace devid::registry::sqlite
