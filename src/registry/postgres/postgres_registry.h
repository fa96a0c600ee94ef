#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/random.h"
#include "base/result.h"
#include "registry/registry.h"

namespace devid::registry {

namespace postgres {
class Connection;
class Pool;
}  // namespace postgres

// PostgresRegistryOptions tunes PostgresRegistry; the defaults suit a server node.
struct PostgresRegistryOptions {
  // max_connections caps the connections this registry opens at once (per node).
  size_t max_connections = 16;
  // connection_wait is how long a call waits for a free connection before failing.
  std::chrono::milliseconds connection_wait{30000};
};

// PostgresRegistry is the Registry on one PostgreSQL database, shared by any number of devid
// nodes. Nothing is cached in the node: every read goes to the database, so a write committed by
// one node is seen by the next read on every other node.
//
// Every write is one transaction at READ COMMITTED. Conditional writes lock the row they check
// (SELECT ... FOR UPDATE) and uniqueness rests on primary keys, so the contracts hold across
// nodes without any lock in the process. The audit record is appended last, holding the
// transaction-scoped advisory lock kAuditLockKey until commit, so audit sequence numbers become
// visible in increasing order across nodes (a reader paging with ListAudit never skips one that
// commits later); the price is that writes commit one at a time. Under that lock each record is
// chained (audit_chain.h) to the last committed one, so the log is one hash chain across nodes.
//
// Etags are 32 lowercase hex digits, times whole microseconds, If-Match "*" matches any existing
// row, continuations hex-encoded keys, IDs non-empty, hub names non-empty without a newline: as
// SqliteRegistry. Writes are durable as the server's synchronous_commit makes them (the default,
// on, flushes the WAL at commit).
//
// Thread-safe. clock and random are called under a mutex, so they need not be thread-safe; they
// must outlive the registry.
class PostgresRegistry final : public Registry {
 public:
  // kAuditLockKey is the pg_advisory_xact_lock key that orders audit appends ("devid", then 2).
  static constexpr int64_t kAuditLockKey = 0x6465766964000002;

  // Open connects to conninfo (a postgresql:// URL), applies the schema migrations this binary
  // has not yet applied (under an advisory lock, so nodes starting at once do not race) and
  // returns the registry. It fails with kUnavailable when the server cannot be reached, and with
  // kFailedPrecondition when a newer devid has migrated the database.
  static Result<std::unique_ptr<PostgresRegistry>> Open(const std::string& conninfo, Clock& clock,
                                                        Random& random);
  // Open with options, as above.
  static Result<std::unique_ptr<PostgresRegistry>> Open(const std::string& conninfo, Clock& clock,
                                                        Random& random,
                                                        const PostgresRegistryOptions& options);

  // ~PostgresRegistry closes the connections. No call may be in flight.
  ~PostgresRegistry() override;

  Result<Enrollment> GetEnrollment(std::string_view registration_id) override;
  Result<Enrollment> PutEnrollment(const Enrollment& enrollment,
                                   const std::optional<std::string>& if_match,
                                   const Actor& actor) override;
  Status DeleteEnrollment(std::string_view registration_id,
                          const std::optional<std::string>& if_match, const Actor& actor) override;
  Result<Page<Enrollment>> QueryEnrollments(const PageRequest& page) override;

  Result<EnrollmentGroup> GetEnrollmentGroup(std::string_view group_id) override;
  Result<EnrollmentGroup> PutEnrollmentGroup(const EnrollmentGroup& group,
                                             const std::optional<std::string>& if_match,
                                             const Actor& actor) override;
  Status DeleteEnrollmentGroup(std::string_view group_id,
                               const std::optional<std::string>& if_match,
                               const Actor& actor) override;
  Result<Page<EnrollmentGroup>> QueryEnrollmentGroups(const PageRequest& page) override;
  Result<std::vector<EnrollmentGroup>> FindGroupCandidates(std::string_view registration_id,
                                                           AttestationType type) override;

  Result<Registration> GetRegistration(std::string_view registration_id) override;
  Result<Registration> SaveRegistration(const Registration& registration,
                                        const Actor& actor) override;
  Status DeleteRegistration(std::string_view registration_id,
                            const std::optional<std::string>& if_match,
                            const Actor& actor) override;
  Result<Page<Registration>> QueryGroupRegistrations(std::string_view group_id,
                                                     const PageRequest& page) override;

  Status PutChallenge(const Challenge& challenge, const Actor& actor) override;
  Result<Challenge> GetChallenge(std::string_view registration_id) override;

  Result<std::optional<std::string>> GetSetting(std::string_view name) override;
  Status SetSetting(std::string_view name, std::string_view value, const Actor& actor) override;
  Result<std::string> SetSettingIfAbsent(std::string_view name, std::string_view value,
                                         const Actor& actor) override;

  Status RecordCertificate(const CertificateRecord& record, std::string_view audit_action,
                           const Actor& actor) override;
  Status ObserveCertificate(const CertificateRecord& record) override;
  Result<Page<CertificateRecord>> QueryCertificates(const CertificateFilter& filter,
                                                    const PageRequest& page) override;
  Result<std::vector<CertificateRecord>> RevokeCertificates(const CertificateFilter& filter,
                                                            int reason,
                                                            const Actor& actor) override;
  Result<int64_t> RevocationVersion() override;

  Result<CaCertificate> GetCaCertificate(std::string_view name) override;
  Result<CaCertificate> PutCaCertificate(const CaCertificate& certificate,
                                         const std::optional<std::string>& if_match,
                                         const Actor& actor) override;
  Status DeleteCaCertificate(std::string_view name, const std::optional<std::string>& if_match,
                             const Actor& actor) override;
  Result<Page<CaCertificate>> QueryCaCertificates(const PageRequest& page) override;
  Result<CaCertificate> SetCaVerificationCode(std::string_view name, std::string_view code_hash,
                                              std::chrono::system_clock::time_point expires,
                                              const std::optional<std::string>& if_match,
                                              const Actor& actor) override;
  Result<CaCertificate> VerifyCaCertificate(std::string_view name,
                                            std::string_view sha256_thumbprint,
                                            std::string_view code_hash,
                                            const Actor& actor) override;

  Result<DeviceCommand> AddDeviceCommand(const DeviceCommand& command,
                                         const Actor& actor) override;
  Status RecordAudit(std::string_view action, std::string_view object, std::string_view outcome,
                     const Actor& actor) override;

  Result<std::vector<AuditRecord>> ListAudit(int64_t after, int limit) override;

 private:
  PostgresRegistry(Clock& clock, Random& random, std::unique_ptr<postgres::Pool> pool);

  // NowMicros returns the clock's time, under stamp_mu_.
  int64_t NowMicros();
  // Stamp returns the time and a fresh etag for a write, under stamp_mu_.
  std::pair<int64_t, std::string> Stamp();
  // Read runs fn on a pooled connection, once more on a fresh one if the first had broken.
  template <typename T, typename Fn>
  Result<T> Read(Fn fn);
  // Write runs fn inside BEGIN ... COMMIT on a pooled connection, retrying the whole transaction
  // a few times on serialization failures and deadlocks.
  Status Write(const std::function<Status(postgres::Connection&)>& fn);

  Clock& clock_;
  Random& random_;
  std::mutex stamp_mu_;
  std::unique_ptr<postgres::Pool> pool_;
};

}  // namespace devid::registry
