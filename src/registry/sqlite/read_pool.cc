#include "registry/sqlite/read_pool.h"

#include <utility>

namespace devid::registry::sqlite {

ReadPool::ReadPool(std::string path, ConnectionOptions options, size_t max_size)
    : path_(std::move(path)),
      options_([&options] {
        ConnectionOptions o = options;
        o.read_only = true;
        return o;
      }()),
      max_size_(max_size == 0 ? 1 : max_size) {}

Result<ReadPool::Lease> ReadPool::Acquire() { return Take(/*wait=*/true); }

Result<ReadPool::Lease> ReadPool::TryAcquire() { return Take(/*wait=*/false); }

Result<ReadPool::Lease> ReadPool::Take(bool wait) {
  {
    std::unique_lock lock(mu_);
    auto available = [this] { return !idle_.empty() || open_ < max_size_; };
    if (!wait && !available()) {
      return std::unexpected(ResourceExhausted("every read connection of the registry is in use"));
    }
    returned_.wait(lock, available);
    if (!idle_.empty()) {
      std::unique_ptr<Connection> conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
    ++open_;  // reserve the slot while opening outside the lock
  }
  auto conn = Connection::Open(path_, options_);
  if (!conn) {
    {
      std::lock_guard lock(mu_);
      --open_;
    }
    returned_.notify_one();
    return std::unexpected(conn.error());
  }
  return Lease(this, std::make_unique<Connection>(std::move(*conn)));
}

void ReadPool::Return(std::unique_ptr<Connection> conn) {
  {
    std::lock_guard lock(mu_);
    idle_.push_back(std::move(conn));
  }
  returned_.notify_one();
}

}  // namespace devid::registry::sqlite
