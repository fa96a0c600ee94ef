#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "base/clock.h"
#include "base/random.h"
#include "base/result.h"
#include "registry/registry.h"
#include "registry/sqlite/snapshot_cache.h"

namespace devid::registry {

namespace sqlite {
class Connection;
class GroupCommitWriter;
class ReadPool;
}  // namespace sqlite

// SqliteRegistryOptions tunes SqliteRegistry; the defaults suit a server.
struct SqliteRegistryOptions {
  // max_readers caps the read connections open at once; more concurrent readers wait.
  size_t max_readers = 8;
  // max_batch caps how many writes share one transaction (and one sync).
  size_t max_batch = 512;
  // max_defer is how long a deferred write (an observed certificate, the audit record of an event
  // that changes nothing else) waits for another write to share a transaction with before it gets
  // one of its own, and how long a commit of deferred writes alone waits for a sync.
  std::chrono::milliseconds max_defer = std::chrono::milliseconds(100);
  // busy_timeout_ms is how long a statement waits while another process holds the database lock.
  int busy_timeout_ms = 5000;
  // read_only opens read connections only: no writer, no migrations, no file created. Every
  // write fails with kFailedPrecondition. For processes that read a store a server owns (the
  // gateway plugin); the file must exist and be migrated by that server.
  bool read_only = false;
};

// SqliteRegistryStats counts a SqliteRegistry's committed work since it opened.
struct SqliteRegistryStats {
  uint64_t transactions = 0;  // committed write transactions (each one sync of the WAL)
  uint64_t writes = 0;        // writes that committed; writes / transactions is the batch size
};

// SqliteRegistry is the Registry on one SQLite file in WAL mode, for a single devid server.
//
// Writes go through one writer thread that commits everything queued in one transaction, each
// write in its own savepoint (group commit): concurrent writers share a sync of the WAL, a write
// returns only once it is durable (synchronous=FULL), and a failed write is undone alone. Reads
// use a small pool of read-only connections and see the last committed state. Inside a ReadScope,
// reads of one enrollment, group, registration or certificate (by SHA-256 thumbprint) come from a
// cache of rows when the scope's snapshot has the change counter they were read at (exact: every
// change to those tables, by any process, moves the counter in its own transaction).
//
// Etags are 32 lowercase hex digits (16 bytes from Random); times are stored in whole
// microseconds, so the copies it returns carry truncated times. If-Match "*" matches any existing
// row (RFC 9110 §13.1.1). IDs must be non-empty and iot_hubs entries non-empty without a newline
// (kInvalidArgument otherwise). Continuations are the last key returned, hex-encoded.
//
// Thread-safe. clock and random are called only from the writer thread, so they need not be
// thread-safe; they must outlive the registry.
class SqliteRegistry final : public Registry {
 public:
  // Open opens or creates the database at path (a file; its directory must exist), applies the
  // schema migrations this binary has not yet applied, and starts the writer. It fails with
  // kUnavailable when the file cannot be opened or put in WAL mode, and with kFailedPrecondition
  // when a newer devid has migrated it.
  static Result<std::unique_ptr<SqliteRegistry>> Open(const std::string& path, Clock& clock,
                                                      Random& random);
  // Open with options, as above.
  static Result<std::unique_ptr<SqliteRegistry>> Open(const std::string& path, Clock& clock,
                                                      Random& random,
                                                      const SqliteRegistryOptions& options);

  // ~SqliteRegistry completes the writes already queued, then closes the database. No call may
  // be in flight.
  ~SqliteRegistry() override;

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

  Result<DeviceCommand> AddDeviceCommand(const DeviceCommand& command, const Actor& actor) override;
  Status RecordAudit(std::string_view action, std::string_view object, std::string_view outcome,
                     const Actor& actor) override;
  bool InProcess() const override { return true; }
  std::unique_ptr<ReadScope> ReadConsistently() override;
  std::unique_ptr<ReadScope> TryReadConsistently() override;

  Result<std::vector<AuditRecord>> ListAudit(int64_t after, int limit) override;

  // stats returns the write counters as of now (zero when read-only).
  SqliteRegistryStats stats() const;

 private:
  SqliteRegistry(Clock& clock, Random& random, std::unique_ptr<sqlite::ReadPool> readers,
                 std::unique_ptr<sqlite::GroupCommitWriter> writer);

  // PinReader starts a ReadScope on a connection from readers_, waiting for one or not.
  std::unique_ptr<ReadScope> PinReader(bool wait);
  // Writable fails with kFailedPrecondition when the registry was opened read-only.
  Status Writable() const;
  // RunWrite runs write on the writer; kFailedPrecondition when opened read-only.
  Status RunWrite(const std::function<Status(sqlite::Connection&)>& write);

  // SettleOwnWrites commits the writes this registry queued and, inside a ReadScope, moves the
  // scope on to a snapshot that holds them: a read after it sees this process's own writes.
  Status SettleOwnWrites();
  // MustFlush tells whether a certificate query could miss an observation not yet committed.
  bool MustFlush(const CertificateFilter& filter) const;

  Clock& clock_;
  Random& random_;
  std::unique_ptr<sqlite::ReadPool> readers_;
  // The thumbprints of observations deferred and not yet settled (one entry per observation).
  // Before writer_, whose destructor settles what is still queued.
  mutable std::mutex observations_mu_;
  std::unordered_multiset<std::string> unsettled_observations_;  // guarded by observations_mu_
  // How many audit records RecordAudit queued that have not settled yet.
  std::atomic<uint64_t> unsettled_audits_{0};
  // Rows read by key inside ReadScopes, as of the change counter their snapshot saw.
  sqlite::SnapshotCache<Result<Enrollment>> enrollments_;
  sqlite::SnapshotCache<Result<EnrollmentGroup>> groups_;
  sqlite::SnapshotCache<Result<Registration>> registrations_;
  sqlite::SnapshotCache<Result<Page<CertificateRecord>>> certificates_;  // by SHA-256 thumbprint
  std::unique_ptr<sqlite::GroupCommitWriter> writer_;
};

}  // namespace devid::registry
