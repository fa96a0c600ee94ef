#pragma once

// The CA certificate part of the Registry conformance suite (registry_conformance_test.h), in
// its own typed suite so back ends instantiate it beside the main one:
//
//   INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, CaCertificateConformanceTest,
//                                  ::testing::Types<SqliteRegistryFactory>);

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "registry/registry_conformance_test.h"

namespace devid::registry::conformance {

template <typename Factory>
class CaCertificateConformanceTest : public RegistryConformanceTest<Factory> {
 protected:
  // MakeCa returns an upload; der holds bytes no text column could (NUL, high bytes).
  static CaCertificate MakeCa(const std::string& name, const std::string& thumbprint = "AB01") {
    CaCertificate c;
    c.name = name;
    c.der = std::string("\x30\x82\x00\xff\x80", 5) + name;
    c.sha256_thumbprint = thumbprint;
    c.subject = "CN=" + name;
    c.verified = true;                     // ignored: uploads are stored unverified
    c.verification_code_hash = "ignored";  // likewise
    c.etag = "ignored-by-put";
    return c;
  }

  CaCertificate PutCaOrDie(const CaCertificate& c) {
    auto put = this->registry().PutCaCertificate(c, std::nullopt, this->actor_);
    EXPECT_TRUE(put.has_value()) << put.error().message();
    return put.value_or(CaCertificate{});
  }

  CaCertificate GetCaOrDie(const std::string& name) {
    auto got = this->registry().GetCaCertificate(name);
    EXPECT_TRUE(got.has_value()) << got.error().message();
    return got.value_or(CaCertificate{});
  }

  CaCertificate SetCodeOrDie(const std::string& name, const std::string& hash,
                             std::chrono::seconds lifetime = std::chrono::hours(1)) {
    auto set = this->registry().SetCaVerificationCode(name, hash, this->clock_.Now() + lifetime,
                                                      std::nullopt, this->actor_);
    EXPECT_TRUE(set.has_value()) << set.error().message();
    return set.value_or(CaCertificate{});
  }

  // ExpectUnchanged checks a refused call left the row and the audit log as they were.
  void ExpectUnchanged(const CaCertificate& before, size_t audit_before) {
    CaCertificate now = GetCaOrDie(before.name);
    EXPECT_EQ(now.etag, before.etag);
    EXPECT_EQ(now.verified, before.verified);
    EXPECT_EQ(now.verification_code_hash, before.verification_code_hash);
    EXPECT_EQ(this->AllAudit().size(), audit_before);
  }
};

TYPED_TEST_SUITE_P(CaCertificateConformanceTest);

TYPED_TEST_P(CaCertificateConformanceTest, RoundTrips_CaCertificateUnverifiedAcrossReopen) {
  CaCertificate put = this->PutCaOrDie(this->MakeCa("root-1"));
  EXPECT_FALSE(put.verified);
  EXPECT_EQ(put.verification_code_hash, "");
  EXPECT_EQ(put.etag.size(), 32u);
  this->Reopen();
  CaCertificate got = this->GetCaOrDie("root-1");
  EXPECT_EQ(got.name, "root-1");
  EXPECT_EQ(got.der, this->MakeCa("root-1").der);
  EXPECT_EQ(got.sha256_thumbprint, "AB01");
  EXPECT_EQ(got.subject, "CN=root-1");
  EXPECT_FALSE(got.verified);
  EXPECT_EQ(got.verification_code_hash, "");
  EXPECT_EQ(got.etag, put.etag);
  EXPECT_EQ(Micros(got.created), Micros(put.created));
  EXPECT_EQ(Micros(got.updated), Micros(put.updated));
  std::vector<AuditRecord> audit = this->AllAudit();
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].action, kAuditCaCertificateCreate);
  EXPECT_EQ(audit[0].object, "root-1");
}

TYPED_TEST_P(CaCertificateConformanceTest, Pages_CaCertificatesInNameOrder) {
  for (const char* name : {"c", "a", "b"}) this->PutCaOrDie(this->MakeCa(name));
  auto first = this->registry().QueryCaCertificates({2, ""});
  ASSERT_TRUE(first) << first.error().message();
  ASSERT_EQ(first->items.size(), 2u);
  EXPECT_EQ(first->items[0].name, "a");
  EXPECT_EQ(first->items[1].name, "b");
  ASSERT_FALSE(first->continuation.empty());
  auto second = this->registry().QueryCaCertificates({2, first->continuation});
  ASSERT_TRUE(second) << second.error().message();
  ASSERT_EQ(second->items.size(), 1u);
  EXPECT_EQ(second->items[0].name, "c");
  EXPECT_EQ(second->continuation, "");
}

TYPED_TEST_P(CaCertificateConformanceTest, Verifies_WithPendingCodeOnlyOnce) {
  this->PutCaOrDie(this->MakeCa("root-1"));
  this->clock_.Advance(std::chrono::seconds(1));
  CaCertificate pending = this->SetCodeOrDie("root-1", "c0de");
  EXPECT_EQ(pending.verification_code_hash, "c0de");
  EXPECT_FALSE(pending.verified);
  auto verified = this->registry().VerifyCaCertificate("root-1", "AB01", "c0de", this->actor_);
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_TRUE(verified->verified);
  EXPECT_EQ(verified->verification_code_hash, "");
  EXPECT_NE(verified->etag, pending.etag);
  CaCertificate got = this->GetCaOrDie("root-1");
  EXPECT_TRUE(got.verified);
  EXPECT_EQ(got.etag, verified->etag);

  size_t audit = this->AllAudit().size();
  auto again = this->registry().VerifyCaCertificate("root-1", "AB01", "c0de", this->actor_);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(again.error().message(), HasSubstr("no verification code is pending"));
  this->ExpectUnchanged(got, audit);
  std::vector<AuditRecord> all = this->AllAudit();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[1].action, kAuditCaCertificateCode);
  EXPECT_EQ(all[2].action, kAuditCaCertificateVerify);
  EXPECT_EQ(all[2].object, "root-1");
}

TYPED_TEST_P(CaCertificateConformanceTest, Rejects_ExpiredWrongOrStaleCode) {
  this->PutCaOrDie(this->MakeCa("root-1"));
  CaCertificate pending = this->SetCodeOrDie("root-1", "c0de", std::chrono::seconds(60));
  size_t audit = this->AllAudit().size();

  auto wrong = this->registry().VerifyCaCertificate("root-1", "AB01", "bad", this->actor_);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(wrong.error().message(), HasSubstr("not the pending verification code"));
  this->ExpectUnchanged(pending, audit);

  auto replaced = this->registry().VerifyCaCertificate("root-1", "CD02", "c0de", this->actor_);
  ASSERT_FALSE(replaced);
  EXPECT_THAT(replaced.error().message(), HasSubstr("replaced"));
  this->ExpectUnchanged(pending, audit);

  this->clock_.Advance(std::chrono::seconds(60));
  auto expired = this->registry().VerifyCaCertificate("root-1", "AB01", "c0de", this->actor_);
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(expired.error().message(), HasSubstr("expired"));
  this->ExpectUnchanged(pending, audit);

  auto missing = this->registry().VerifyCaCertificate("nope", "AB01", "c0de", this->actor_);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(this->AllAudit().size(), audit);
}

TYPED_TEST_P(CaCertificateConformanceTest, Replaces_CertificateDroppingVerificationKeepingCreated) {
  CaCertificate first = this->PutCaOrDie(this->MakeCa("root-1"));
  this->SetCodeOrDie("root-1", "c0de");
  ASSERT_TRUE(this->registry().VerifyCaCertificate("root-1", "AB01", "c0de", this->actor_));
  this->clock_.Advance(std::chrono::seconds(5));
  CaCertificate second = this->PutCaOrDie(this->MakeCa("root-1", "CD02"));
  EXPECT_FALSE(second.verified);
  EXPECT_EQ(Micros(second.created), Micros(first.created));
  CaCertificate got = this->GetCaOrDie("root-1");
  EXPECT_FALSE(got.verified);
  EXPECT_EQ(got.sha256_thumbprint, "CD02");
  EXPECT_EQ(Micros(got.created), Micros(first.created));
  EXPECT_EQ(this->AllAudit().back().action, kAuditCaCertificateUpdate);
}

TYPED_TEST_P(CaCertificateConformanceTest, Rejects_EtagMismatchOnPutCodeAndDelete) {
  CaCertificate put = this->PutCaOrDie(this->MakeCa("root-1"));
  size_t audit = this->AllAudit().size();
  auto replace = this->registry().PutCaCertificate(this->MakeCa("root-1", "CD02"),
                                                   std::string("stale"), this->actor_);
  ASSERT_FALSE(replace);
  EXPECT_EQ(replace.error().code(), ErrorCode::kFailedPrecondition);
  auto code = this->registry().SetCaVerificationCode("root-1", "c0de",
                                                     this->clock_.Now() + std::chrono::hours(1),
                                                     std::string("stale"), this->actor_);
  ASSERT_FALSE(code);
  EXPECT_EQ(code.error().code(), ErrorCode::kFailedPrecondition);
  auto deleted = this->registry().DeleteCaCertificate("root-1", std::string("stale"), this->actor_);
  ASSERT_FALSE(deleted);
  EXPECT_EQ(deleted.error().code(), ErrorCode::kFailedPrecondition);
  this->ExpectUnchanged(put, audit);
  EXPECT_TRUE(this->registry().DeleteCaCertificate("root-1", put.etag, this->actor_));
}

TYPED_TEST_P(CaCertificateConformanceTest, Refuses_DeleteWhileAGroupReferencesIt) {
  CaCertificate put = this->PutCaOrDie(this->MakeCa("root-1"));
  EnrollmentGroup group = MakeGroup("fleet", "", AttestationType::kX509);
  group.settings.attestation.x509.ca_reference_primary = "other";
  group.settings.attestation.x509.ca_reference_secondary = "root-1";
  this->PutOrDie(group);
  size_t audit = this->AllAudit().size();
  auto refused = this->registry().DeleteCaCertificate("root-1", std::nullopt, this->actor_);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(refused.error().message(), HasSubstr("\"fleet\""));
  this->ExpectUnchanged(put, audit);

  ASSERT_TRUE(this->registry().DeleteEnrollmentGroup("fleet", std::nullopt, this->actor_));
  ASSERT_TRUE(this->registry().DeleteCaCertificate("root-1", std::nullopt, this->actor_));
  auto gone = this->registry().GetCaCertificate("root-1");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(this->AllAudit().back().action, kAuditCaCertificateDelete);
  auto again = this->registry().DeleteCaCertificate("root-1", std::nullopt, this->actor_);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kNotFound);
}

TYPED_TEST_P(CaCertificateConformanceTest, Consumes_OneCodeOnceAmongConcurrentVerifications) {
  this->PutCaOrDie(this->MakeCa("root-1"));
  this->SetCodeOrDie("root-1", "c0de");
  constexpr int kThreads = 8;
  std::atomic<int> successes{0};
  std::atomic<int> refusals{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      auto verified = this->registry().VerifyCaCertificate("root-1", "AB01", "c0de", this->actor_);
      if (verified) {
        ++successes;
      } else if (verified.error().code() == ErrorCode::kFailedPrecondition) {
        ++refusals;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(successes.load(), 1);
  EXPECT_EQ(refusals.load(), kThreads - 1);
  int verifies = 0;
  for (const AuditRecord& r : this->AllAudit()) verifies += r.action == kAuditCaCertificateVerify;
  EXPECT_EQ(verifies, 1);
}

TYPED_TEST_P(CaCertificateConformanceTest, Rejects_IncompleteUploadAndMissingCertificate) {
  CaCertificate empty_name = this->MakeCa("");
  auto put = this->registry().PutCaCertificate(empty_name, std::nullopt, this->actor_);
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code(), ErrorCode::kInvalidArgument);
  CaCertificate no_der = this->MakeCa("root-1");
  no_der.der.clear();
  put = this->registry().PutCaCertificate(no_der, std::nullopt, this->actor_);
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code(), ErrorCode::kInvalidArgument);
  auto code = this->registry().SetCaVerificationCode(
      "root-1", "c0de", this->clock_.Now() + std::chrono::hours(1), std::nullopt, this->actor_);
  ASSERT_FALSE(code);
  EXPECT_EQ(code.error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(this->AllAudit().empty());
}

REGISTER_TYPED_TEST_SUITE_P(CaCertificateConformanceTest,
                            RoundTrips_CaCertificateUnverifiedAcrossReopen,
                            Pages_CaCertificatesInNameOrder, Verifies_WithPendingCodeOnlyOnce,
                            Rejects_ExpiredWrongOrStaleCode,
                            Replaces_CertificateDroppingVerificationKeepingCreated,
                            Rejects_EtagMismatchOnPutCodeAndDelete,
                            Refuses_DeleteWhileAGroupReferencesIt,
                            Consumes_OneCodeOnceAmongConcurrentVerifications,
                            Rejects_IncompleteUploadAndMissingCertificate);

}  // namespace devid::registry::conformance
