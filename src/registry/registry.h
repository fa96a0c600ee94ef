#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "registry/audit.h"
#include "registry/ca_certificate.h"
#include "registry/certificate_record.h"
#include "registry/device_command.h"
#include "registry/enrollment.h"
#include "registry/registration.h"

namespace devid::registry {

// PageRequest asks for up to max_items entries after an opaque continuation ("" = from the start).
struct PageRequest {
  int max_items = 100;
  std::string continuation;
};

// Page is one slice of a query; continuation is "" on the last page.
template <typename T>
struct Page {
  std::vector<T> items;
  std::string continuation;
};

// Challenge is a pending proof-of-possession challenge for one registration ID: the secret the
// device must prove it recovered (TPM attestation: the base64 HMAC key wrapped in the activation
// blob, protocol notes §4.2), usable once, until expires.
struct Challenge {
  std::string registration_id;
  std::string secret;  // base64
  std::chrono::system_clock::time_point expires;
};

// Registry is the store of identity state: enrollments, groups, registrations, settings and the
// audit log. Implementations (SQLite, PostgreSQL) are interchangeable and safe to call from many
// threads. Every write that changes identity state appends its AuditRecord in the same transaction.
//
// Conditional writes take if_match: when set and not equal to the stored etag the write fails
// with kFailedPrecondition and changes nothing. Writes assign a fresh etag and the updated time.
class Registry {
 public:
  virtual ~Registry() = default;

  // Individual enrollments.
  // GetEnrollment fails with kNotFound when there is none.
  virtual Result<Enrollment> GetEnrollment(std::string_view registration_id) = 0;
  // PutEnrollment creates or replaces the enrollment and returns the stored copy (with its new
  // etag and times). created is kept on update.
  virtual Result<Enrollment> PutEnrollment(const Enrollment& enrollment,
                                           const std::optional<std::string>& if_match,
                                           const Actor& actor) = 0;
  // DeleteEnrollment fails with kNotFound when there is none.
  virtual Status DeleteEnrollment(std::string_view registration_id,
                                  const std::optional<std::string>& if_match,
                                  const Actor& actor) = 0;
  // QueryEnrollments pages through all individual enrollments in registration ID order.
  virtual Result<Page<Enrollment>> QueryEnrollments(const PageRequest& page) = 0;

  // Enrollment groups, with the same contracts.
  virtual Result<EnrollmentGroup> GetEnrollmentGroup(std::string_view group_id) = 0;
  virtual Result<EnrollmentGroup> PutEnrollmentGroup(const EnrollmentGroup& group,
                                                     const std::optional<std::string>& if_match,
                                                     const Actor& actor) = 0;
  virtual Status DeleteEnrollmentGroup(std::string_view group_id,
                                       const std::optional<std::string>& if_match,
                                       const Actor& actor) = 0;
  virtual Result<Page<EnrollmentGroup>> QueryEnrollmentGroups(const PageRequest& page) = 0;
  // FindGroupCandidates returns the groups of the given attestation type that may hold
  // registration_id: those whose registration_id_prefix is a prefix of it (found through an index,
  // longest prefix first), then those with no prefix, in creation order.
  virtual Result<std::vector<EnrollmentGroup>> FindGroupCandidates(
      std::string_view registration_id, AttestationType type) = 0;

  // Registrations.
  virtual Result<Registration> GetRegistration(std::string_view registration_id) = 0;
  // SaveRegistration durably creates or replaces the registration (the write is committed and
  // synced before it returns) and returns the stored copy with its new etag. It deletes the
  // registration ID's pending Challenge in the same transaction, so a challenge answers once.
  virtual Result<Registration> SaveRegistration(const Registration& registration,
                                                const Actor& actor) = 0;
  virtual Status DeleteRegistration(std::string_view registration_id,
                                    const std::optional<std::string>& if_match,
                                    const Actor& actor) = 0;
  // QueryGroupRegistrations pages through the registrations made through one group.
  virtual Result<Page<Registration>> QueryGroupRegistrations(std::string_view group_id,
                                                             const PageRequest& page) = 0;

  // Challenges: at most one pending per registration ID. They are transient (no audit record)
  // and every back end overrides both calls; the defaults fail with kFailedPrecondition.
  // PutChallenge durably stores challenge, replacing any pending one for its registration ID.
  virtual Status PutChallenge(const Challenge& challenge, const Actor& actor) {
    (void)actor;
    return std::unexpected(FailedPrecondition("storing a challenge for " +
                                              challenge.registration_id +
                                              ": this store does not support challenges"));
  }
  // GetChallenge returns the pending challenge; kNotFound when there is none or it has expired
  // (expires <= the store's clock).
  virtual Result<Challenge> GetChallenge(std::string_view registration_id) {
    return std::unexpected(FailedPrecondition("reading the challenge for " +
                                              std::string(registration_id) +
                                              ": this store does not support challenges"));
  }

  // Settings: small named values the service keeps (ID scope, service policies).
  // GetSetting returns nullopt when the name is unset.
  virtual Result<std::optional<std::string>> GetSetting(std::string_view name) = 0;
  virtual Status SetSetting(std::string_view name, std::string_view value,
                            const Actor& actor) = 0;
  // SetSettingIfAbsent stores value under name unless the name is already set, and returns the
  // stored value either way, atomically: of several nodes first-starting on one store at once,
  // one writes (and audits) and all see its value.
  virtual Result<std::string> SetSettingIfAbsent(std::string_view name, std::string_view value,
                                                 const Actor& actor) = 0;

  // Certificate inventory (issued and observed certificates, revocation state).
  // RecordCertificate durably stores a certificate devid issued (source kIssued) and appends
  // audit_action (kAuditCertificateIssue or kAuditCertificateRenew, object = the serial) in the
  // same transaction. first_seen/last_seen are set to the store's clock and the record's source
  // and revocation fields are ignored (it is stored issued, not revoked). Fails with
  // kAlreadyExists when the thumbprint or (issuer, serial) is already recorded, so two nodes can
  // never hand out one serial twice; with kInvalidArgument when the thumbprint or serial is empty
  // or audit_action is neither of the two.
  virtual Status RecordCertificate(const CertificateRecord& record, std::string_view audit_action,
                                   const Actor& actor) = 0;
  // ObserveCertificate records a certificate a peer presented: inserted with source kObserved
  // when unknown, else only its last_seen moves to now, never back (an issued one keeps source
  // kIssued). No audit record: it happens on every authentication. Fails with kAlreadyExists when
  // a different certificate (another thumbprint) with the same (issuer, serial) is recorded. A
  // store may commit the sighting with a later write (SQLite: within 100 ms by default) rather than sync it
  // alone, so a crash may lose it; this registry's own reads see it at once.
  virtual Status ObserveCertificate(const CertificateRecord& record) = 0;
  // QueryCertificates pages through the records matching filter, ordered by not_after then
  // thumbprint (soonest expiring first). A malformed continuation fails with kInvalidArgument.
  virtual Result<Page<CertificateRecord>> QueryCertificates(const CertificateFilter& filter,
                                                            const PageRequest& page) = 0;
  // RevokeCertificates marks every issued, not yet revoked certificate matching filter revoked
  // with reason (RFC 5280 CRLReason) at the store's clock, appends one kAuditCertificateRevoke
  // record per certificate, bumps the revocation version, all in one transaction, and returns the
  // newly revoked records. Fails with kNotFound when filter matches no issued certificate at all
  // (an unknown serial), and with kInvalidArgument for an empty filter (no revoking everything by
  // accident) or a reason a revocation cannot carry (7, 8, or outside 0-10). Matching only
  // already-revoked certificates succeeds with an empty list and changes nothing. The audit
  // outcome is "success; reason <n>"; the list is in QueryCertificates' order.
  virtual Result<std::vector<CertificateRecord>> RevokeCertificates(const CertificateFilter& filter,
                                                                    int reason,
                                                                    const Actor& actor) = 0;
  // RevocationVersion is a counter that grows with every revocation on any node sharing the store;
  // caches of revocation state (CRLs, OCSP responses) compare it to know they are stale.
  virtual Result<int64_t> RevocationVersion() = 0;

  // CA certificates (DPS proof of possession), with the If-Match contract above.
  // GetCaCertificate fails with kNotFound when there is none.
  virtual Result<CaCertificate> GetCaCertificate(std::string_view name) = 0;
  // PutCaCertificate creates or replaces the named certificate (der, sha256_thumbprint, subject)
  // and returns the stored copy. It is always stored unverified with no pending code: a replaced
  // certificate must be proved again. created is kept on update.
  virtual Result<CaCertificate> PutCaCertificate(const CaCertificate& certificate,
                                                 const std::optional<std::string>& if_match,
                                                 const Actor& actor) = 0;
  // DeleteCaCertificate fails with kNotFound when there is none, and with kFailedPrecondition
  // (naming the group) while an enrollment group's caReferences names it, checked in the same
  // transaction as the delete.
  virtual Status DeleteCaCertificate(std::string_view name,
                                     const std::optional<std::string>& if_match,
                                     const Actor& actor) = 0;
  // QueryCaCertificates pages through all CA certificates in name order.
  virtual Result<Page<CaCertificate>> QueryCaCertificates(const PageRequest& page) = 0;
  // SetCaVerificationCode makes code_hash (hex SHA-256 of a fresh code) the certificate's one
  // pending code until expires, replacing any, and returns the stored copy. kNotFound when absent.
  virtual Result<CaCertificate> SetCaVerificationCode(std::string_view name,
                                                      std::string_view code_hash,
                                                      std::chrono::system_clock::time_point expires,
                                                      const std::optional<std::string>& if_match,
                                                      const Actor& actor) = 0;
  // VerifyCaCertificate consumes the pending code and marks the certificate verified, atomically:
  // only when the stored certificate still has sha256_thumbprint, its pending code hash equals
  // code_hash and the code has not expired at the store's clock. Of concurrent calls with one
  // code, exactly one succeeds. Fails with kNotFound when absent, and with kFailedPrecondition
  // saying which condition failed (no pending code — never generated or already used —, expired,
  // not the pending code, certificate replaced); a failure changes nothing.
  virtual Result<CaCertificate> VerifyCaCertificate(std::string_view name,
                                                    std::string_view sha256_thumbprint,
                                                    std::string_view code_hash,
                                                    const Actor& actor) = 0;

  // Server-signed commands (docs/commands.md).
  // AddDeviceCommand stores command under the device's next sequence number (one more than the
  // highest stored for command.device_id, starting at 1; command.sequence is ignored), appends a
  // kAuditCommandSign record in the same transaction and returns the stored copy. The issued time
  // is the store's clock. The (device, sequence) primary key makes a number unique even when
  // nodes sharing the store sign at once: the loser of a race takes the next number. Fails with
  // kNotFound when the device has no registration (checked in the same transaction), and with
  // kInvalidArgument when device_id or body_sha256 is empty or expires is not after now; a
  // failure stores nothing.
  virtual Result<DeviceCommand> AddDeviceCommand(const DeviceCommand& command,
                                                 const Actor& actor) = 0;

  // RecordAudit appends one audit record for an event that changes nothing else in the store (a
  // peer token issued, docs/tokens.md), at the store's clock. Fails with the store's error, and
  // then appends nothing. An InProcess store may queue the record and write it a moment later
  // (SqliteRegistryOptions::max_defer), logging a failure then; ListAudit sees it at once.
  virtual Status RecordAudit(std::string_view action, std::string_view object,
                             std::string_view outcome, const Actor& actor) = 0;

  // ReadScope, while it lives, makes this thread's reads of the store see one snapshot.
  class ReadScope {
   public:
    virtual ~ReadScope() = default;
  };
  // ReadConsistently starts a ReadScope for the reads one request makes, so that they see the
  // store as of one moment, and an InProcess store begins one read transaction for all of them
  // instead of one each. It may return null (a store without snapshots, or a scope already open
  // on this thread), and then reads go on as before. Writes made in the scope are seen after it
  // ends; it must end on the thread that started it.
  virtual std::unique_ptr<ReadScope> ReadConsistently() { return nullptr; }
  // TryReadConsistently is ReadConsistently that never waits (for a free connection of an
  // InProcess store); null when it would have to, or as ReadConsistently.
  virtual std::unique_ptr<ReadScope> TryReadConsistently() { return nullptr; }

  // InProcess tells whether the store runs inside this process (SQLite): its reads wait on no
  // network, only on the disk cache, and RecordAudit on nothing, so they may be called on an I/O
  // thread.
  virtual bool InProcess() const { return false; }

  // ListAudit returns up to limit records with sequence > after, oldest first.
  virtual Result<std::vector<AuditRecord>> ListAudit(int64_t after, int limit) = 0;
};

}  // namespace devid::registry
