#pragma once

// The conformance suite every Registry back end passes. A back end instantiates it with a
// Factory type:
//
//   INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, RegistryConformanceTest,
//                                  ::testing::Types<SqliteRegistryFactory>);
//
// A Factory is default-constructible, owns one empty store for the life of one test, and has
//
//   Result<std::unique_ptr<Registry>> Open(Clock& clock, Random& random);
//
// which opens that store; the suite calls it again after destroying the registry to check that
// state survives a restart. A Factory whose store needs an outside server may also have
//
//   std::string SkipReason() const;
//
// and a non-empty answer skips the test with that message (for local runs without the server;
// a Factory must fail, not skip, in CI).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "base/clock.h"
#include "base/random.h"
#include "base/result.h"
#include "registry/registry.h"

namespace devid::registry::conformance {

using ::testing::HasSubstr;

// kStart has nanoseconds, which stores may truncate: tests compare what a write returned with
// what a read returns, never with the clock.
inline std::chrono::system_clock::time_point StartTime() {
  using namespace std::chrono;
  return sys_days{year{2026} / 11 / 26} + hours{14} + nanoseconds{123456789};
}

inline int64_t Micros(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

// MakeEnrollment returns an enrollment with every field set to a value that differs from its
// default, so a field the store drops shows up in ExpectSameEnrollment.
inline Enrollment MakeEnrollment(const std::string& registration_id) {
  Enrollment e;
  e.registration_id = registration_id;
  e.device_id = "device-of-" + registration_id;
  e.optional_device_information_json = R"({"model":"m1"})";
  EnrollmentSettings& s = e.settings;
  s.attestation.type = AttestationType::kX509;
  s.attestation.symmetric_key = {"c3ltLXByaW1hcnk=", "c3ltLXNlY29uZGFyeQ=="};
  s.attestation.x509 = {"-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n",
                        "client-secondary",
                        "signing-primary",
                        "signing-secondary",
                        "ca-primary",
                        "ca-secondary"};
  s.attestation.tpm = {"ZWs=", "c3Jr", true, "sha256:0,7:ab"};
  s.enabled = false;
  s.iot_edge = true;
  s.initial_twin_json = R"({"tags":{"floor":"3"},"properties":{"desired":{"x":1}}})";
  s.reprovision_policy = {false, false};
  s.allocation_policy = "static";
  s.iot_hubs = {"hub-a.example.net", "hub-b.example.net"};
  s.iot_hub_host_name = "hub-a.example.net";
  s.custom_allocation_json = R"({"webhookUrl":"https://example.net/alloc"})";
  s.etag = "ignored-by-put";
  return e;
}

// MakeGroup returns a group with every field set, of the given prefix and attestation type.
inline EnrollmentGroup MakeGroup(const std::string& group_id, const std::string& prefix = "",
                                 AttestationType type = AttestationType::kSymmetricKey) {
  EnrollmentGroup g;
  g.enrollment_group_id = group_id;
  g.registration_id_prefix = prefix;
  g.settings = MakeEnrollment("unused").settings;
  g.settings.attestation.type = type;
  g.settings.attestation.tpm.require_ek_certificate = false;  // individual enrollments only
  g.settings.attestation.tpm.pcr_policy.clear();
  g.settings.iot_hubs = {"hub-c.example.net"};
  return g;
}

// MakeRegistration returns a registration with every field set, made through group_id.
inline Registration MakeRegistration(const std::string& registration_id,
                                     const std::string& group_id = "") {
  Registration r;
  r.registration_id = registration_id;
  r.device_id = registration_id + "-device";
  r.assigned_hub = "hub-a.example.net";
  r.status = "assigned";
  r.substatus = "initialAssignment";
  r.operation_id = "4.0ab1c2d3e4f5a6b7.0123-4567";
  r.enrollment_group_id = group_id;
  r.attestation_type = AttestationType::kSymmetricKey;
  r.payload_json = R"({"modelId":"dtmi:x;1"})";
  r.response_payload_json = R"({"ok":true})";
  r.error_code = 401002;
  r.error_message = "none really";
  r.device_key = "ZGV2aWNlLWtleQ==";
  r.tpm_storage_root_key = "c3JrLXB1YmxpYw==";
  return r;
}

inline void ExpectSameSettings(const EnrollmentSettings& a, const EnrollmentSettings& b) {
  EXPECT_EQ(a.attestation.type, b.attestation.type);
  EXPECT_EQ(a.attestation.symmetric_key.primary_key, b.attestation.symmetric_key.primary_key);
  EXPECT_EQ(a.attestation.symmetric_key.secondary_key, b.attestation.symmetric_key.secondary_key);
  EXPECT_EQ(a.attestation.x509.client_primary_pem, b.attestation.x509.client_primary_pem);
  EXPECT_EQ(a.attestation.x509.client_secondary_pem, b.attestation.x509.client_secondary_pem);
  EXPECT_EQ(a.attestation.x509.signing_primary_pem, b.attestation.x509.signing_primary_pem);
  EXPECT_EQ(a.attestation.x509.signing_secondary_pem, b.attestation.x509.signing_secondary_pem);
  EXPECT_EQ(a.attestation.x509.ca_reference_primary, b.attestation.x509.ca_reference_primary);
  EXPECT_EQ(a.attestation.x509.ca_reference_secondary, b.attestation.x509.ca_reference_secondary);
  EXPECT_EQ(a.attestation.tpm.endorsement_key, b.attestation.tpm.endorsement_key);
  EXPECT_EQ(a.attestation.tpm.storage_root_key, b.attestation.tpm.storage_root_key);
  EXPECT_EQ(a.enabled, b.enabled);
  EXPECT_EQ(a.iot_edge, b.iot_edge);
  EXPECT_EQ(a.initial_twin_json, b.initial_twin_json);
  EXPECT_EQ(a.reprovision_policy.update_hub_assignment, b.reprovision_policy.update_hub_assignment);
  EXPECT_EQ(a.reprovision_policy.migrate_device_data, b.reprovision_policy.migrate_device_data);
  EXPECT_EQ(a.allocation_policy, b.allocation_policy);
  EXPECT_EQ(a.iot_hubs, b.iot_hubs);
  EXPECT_EQ(a.iot_hub_host_name, b.iot_hub_host_name);
  EXPECT_EQ(a.custom_allocation_json, b.custom_allocation_json);
}

// ExpectSameEnrollment compares everything but the etag and times.
inline void ExpectSameEnrollment(const Enrollment& a, const Enrollment& b) {
  EXPECT_EQ(a.registration_id, b.registration_id);
  EXPECT_EQ(a.device_id, b.device_id);
  EXPECT_EQ(a.optional_device_information_json, b.optional_device_information_json);
  ExpectSameSettings(a.settings, b.settings);
  EXPECT_EQ(a.settings.attestation.tpm.require_ek_certificate,
            b.settings.attestation.tpm.require_ek_certificate);
  EXPECT_EQ(a.settings.attestation.tpm.pcr_policy, b.settings.attestation.tpm.pcr_policy);
}

// ExpectSameVersion compares the etag and times.
inline void ExpectSameVersion(const EnrollmentSettings& a, const EnrollmentSettings& b) {
  EXPECT_EQ(a.etag, b.etag);
  EXPECT_EQ(Micros(a.created), Micros(b.created));
  EXPECT_EQ(Micros(a.updated), Micros(b.updated));
}

inline void ExpectSameGroup(const EnrollmentGroup& a, const EnrollmentGroup& b) {
  EXPECT_EQ(a.enrollment_group_id, b.enrollment_group_id);
  EXPECT_EQ(a.registration_id_prefix, b.registration_id_prefix);
  ExpectSameSettings(a.settings, b.settings);
}

inline void ExpectSameRegistration(const Registration& a, const Registration& b) {
  EXPECT_EQ(a.registration_id, b.registration_id);
  EXPECT_EQ(a.device_id, b.device_id);
  EXPECT_EQ(a.assigned_hub, b.assigned_hub);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.substatus, b.substatus);
  EXPECT_EQ(a.operation_id, b.operation_id);
  EXPECT_EQ(a.enrollment_group_id, b.enrollment_group_id);
  EXPECT_EQ(a.attestation_type, b.attestation_type);
  EXPECT_EQ(a.payload_json, b.payload_json);
  EXPECT_EQ(a.response_payload_json, b.response_payload_json);
  EXPECT_EQ(a.error_code, b.error_code);
  EXPECT_EQ(a.error_message, b.error_message);
  EXPECT_EQ(a.device_key, b.device_key);
  EXPECT_EQ(a.tpm_storage_root_key, b.tpm_storage_root_key);
}

template <typename T>
std::vector<std::string> GroupIds(const std::vector<T>& groups) {
  std::vector<std::string> ids;
  for (const auto& g : groups) ids.push_back(g.enrollment_group_id);
  return ids;
}

// RegistryConformanceTest is the fixture: a fresh store per test, a FakeClock and SecureRandom.
template <typename Factory>
class RegistryConformanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if constexpr (requires(const Factory& f) { f.SkipReason(); }) {
      if (std::string reason = factory_.SkipReason(); !reason.empty()) GTEST_SKIP() << reason;
    }
    Reopen();
  }

  // Reopen closes the registry (if open) and opens the same store again.
  void Reopen() {
    registry_.reset();
    auto opened = factory_.Open(clock_, random_);
    ASSERT_TRUE(opened.has_value()) << opened.error().message();
    registry_ = std::move(*opened);
  }

  Registry& registry() { return *registry_; }

  // AllAudit returns every audit record.
  std::vector<AuditRecord> AllAudit() {
    std::vector<AuditRecord> all;
    int64_t after = 0;
    for (;;) {
      auto page = registry_->ListAudit(after, 1000);
      EXPECT_TRUE(page.has_value()) << page.error().message();
      if (!page || page->empty()) return all;
      after = page->back().sequence;
      all.insert(all.end(), page->begin(), page->end());
    }
  }

  // AllCertificates pages through every record matching filter, page_size at a time.
  std::vector<CertificateRecord> AllCertificates(const CertificateFilter& filter,
                                                 int page_size = 1000) {
    std::vector<CertificateRecord> all;
    PageRequest request{page_size, ""};
    for (int pages = 0; pages < 1000; ++pages) {
      auto page = registry_->QueryCertificates(filter, request);
      EXPECT_TRUE(page.has_value()) << page.error().message();
      if (!page) break;
      all.insert(all.end(), page->items.begin(), page->items.end());
      if (page->continuation.empty()) break;
      request.continuation = page->continuation;
    }
    return all;
  }

  Enrollment PutOrDie(const Enrollment& e) {
    auto put = registry_->PutEnrollment(e, std::nullopt, actor_);
    EXPECT_TRUE(put.has_value()) << put.error().message();
    return put.value_or(Enrollment{});
  }

  EnrollmentGroup PutOrDie(const EnrollmentGroup& g) {
    auto put = registry_->PutEnrollmentGroup(g, std::nullopt, actor_);
    EXPECT_TRUE(put.has_value()) << put.error().message();
    return put.value_or(EnrollmentGroup{});
  }

  Registration SaveOrDie(const Registration& r) {
    auto saved = registry_->SaveRegistration(r, actor_);
    EXPECT_TRUE(saved.has_value()) << saved.error().message();
    return saved.value_or(Registration{});
  }

  FakeClock clock_{StartTime()};
  SecureRandom random_;
  Actor actor_{"service:registryWrite"};
  Factory factory_;
  std::unique_ptr<Registry> registry_;
};

TYPED_TEST_SUITE_P(RegistryConformanceTest);

// Enrollments.

TYPED_TEST_P(RegistryConformanceTest, RoundTrips_AllEnrollmentFields) {
  Enrollment put = this->PutOrDie(MakeEnrollment("dev-1"));
  ExpectSameEnrollment(put, MakeEnrollment("dev-1"));
  EXPECT_FALSE(put.settings.etag.empty());
  EXPECT_NE(put.settings.etag, "ignored-by-put");
  EXPECT_EQ(Micros(put.settings.created), Micros(StartTime()));
  EXPECT_EQ(Micros(put.settings.updated), Micros(StartTime()));

  auto got = this->registry().GetEnrollment("dev-1");
  ASSERT_TRUE(got.has_value()) << got.error().message();
  ExpectSameEnrollment(*got, put);
  ExpectSameVersion(got->settings, put.settings);
}

TYPED_TEST_P(RegistryConformanceTest, RoundTrips_EmptyFields) {
  Enrollment e;
  e.registration_id = "bare";
  Enrollment put = this->PutOrDie(e);
  auto got = this->registry().GetEnrollment("bare");
  ASSERT_TRUE(got.has_value()) << got.error().message();
  ExpectSameEnrollment(*got, e);
  EXPECT_TRUE(got->settings.iot_hubs.empty());
  ExpectSameVersion(got->settings, put.settings);
}

TYPED_TEST_P(RegistryConformanceTest, Keeps_CreatedOnUpdate) {
  Enrollment first = this->PutOrDie(MakeEnrollment("dev-1"));
  this->clock_.Advance(std::chrono::minutes(5));
  Enrollment changed = MakeEnrollment("dev-1");
  changed.device_id = "renamed";
  changed.settings.iot_hubs = {"hub-z.example.net"};
  auto second = this->registry().PutEnrollment(changed, first.settings.etag, this->actor_);
  ASSERT_TRUE(second.has_value()) << second.error().message();

  EXPECT_EQ(Micros(second->settings.created), Micros(first.settings.created));
  EXPECT_EQ(Micros(second->settings.updated), Micros(StartTime() + std::chrono::minutes(5)));
  EXPECT_NE(second->settings.etag, first.settings.etag);
  auto got = this->registry().GetEnrollment("dev-1");
  ASSERT_TRUE(got.has_value());
  ExpectSameEnrollment(*got, changed);
  ExpectSameVersion(got->settings, second->settings);
}

TYPED_TEST_P(RegistryConformanceTest, Rejects_EtagMismatch) {
  Enrollment first = this->PutOrDie(MakeEnrollment("dev-1"));
  size_t audit_before = this->AllAudit().size();
  Enrollment changed = MakeEnrollment("dev-1");
  changed.device_id = "renamed";

  auto put = this->registry().PutEnrollment(changed, std::string("stale"), this->actor_);
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(put.error().message(), HasSubstr("etag mismatch"));

  auto got = this->registry().GetEnrollment("dev-1");
  ASSERT_TRUE(got.has_value());
  ExpectSameEnrollment(*got, first);
  ExpectSameVersion(got->settings, first.settings);
  EXPECT_EQ(this->AllAudit().size(), audit_before);
}

TYPED_TEST_P(RegistryConformanceTest, Accepts_WildcardIfMatchOnExistingRow) {
  this->PutOrDie(MakeEnrollment("dev-1"));
  auto put =
      this->registry().PutEnrollment(MakeEnrollment("dev-1"), std::string("*"), this->actor_);
  EXPECT_TRUE(put.has_value()) << put.error().message();
}

TYPED_TEST_P(RegistryConformanceTest, Rejects_IfMatchOnMissingEnrollment) {
  auto put =
      this->registry().PutEnrollment(MakeEnrollment("dev-1"), std::string("abc"), this->actor_);
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(this->registry().GetEnrollment("dev-1").error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(this->AllAudit().empty());
}

TYPED_TEST_P(RegistryConformanceTest, Rejects_GetOfMissingEnrollment) {
  auto got = this->registry().GetEnrollment("nobody");
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(got.error().message(), HasSubstr("nobody"));
}

TYPED_TEST_P(RegistryConformanceTest, Rejects_DeleteOfMissingEnrollment) {
  auto deleted = this->registry().DeleteEnrollment("nobody", std::nullopt, this->actor_);
  ASSERT_FALSE(deleted.has_value());
  EXPECT_EQ(deleted.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(deleted.error().message(), HasSubstr("nobody"));
  EXPECT_TRUE(this->AllAudit().empty());
}

TYPED_TEST_P(RegistryConformanceTest, Deletes_Enrollment) {
  Enrollment put = this->PutOrDie(MakeEnrollment("dev-1"));
  auto deleted = this->registry().DeleteEnrollment("dev-1", put.settings.etag, this->actor_);
  ASSERT_TRUE(deleted.has_value()) << deleted.error().message();
  EXPECT_EQ(this->registry().GetEnrollment("dev-1").error().code(), ErrorCode::kNotFound);
  std::vector<AuditRecord> audit = this->AllAudit();
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[1].action, "enrollment.delete");
  EXPECT_EQ(audit[1].object, "dev-1");
}

TYPED_TEST_P(RegistryConformanceTest, Rejects_DeleteWithEtagMismatch) {
  Enrollment put = this->PutOrDie(MakeEnrollment("dev-1"));
  auto deleted = this->registry().DeleteEnrollment("dev-1", std::string("stale"), this->actor_);
  ASSERT_FALSE(deleted.has_value());
  EXPECT_EQ(deleted.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(deleted.error().message(), HasSubstr("etag mismatch"));
  auto got = this->registry().GetEnrollment("dev-1");
  ASSERT_TRUE(got.has_value());
  ExpectSameVersion(got->settings, put.settings);
  EXPECT_EQ(this->AllAudit().size(), 1u);
}

TYPED_TEST_P(RegistryConformanceTest, Rejects_EmptyIds) {
  auto put = this->registry().PutEnrollment(MakeEnrollment(""), std::nullopt, this->actor_);
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code(), ErrorCode::kInvalidArgument);
  auto group = this->registry().PutEnrollmentGroup(MakeGroup(""), std::nullopt, this->actor_);
  ASSERT_FALSE(group.has_value());
  EXPECT_EQ(group.error().code(), ErrorCode::kInvalidArgument);
  auto saved = this->registry().SaveRegistration(MakeRegistration(""), this->actor_);
  ASSERT_FALSE(saved.has_value());
  EXPECT_EQ(saved.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(this->AllAudit().empty());
}

TYPED_TEST_P(RegistryConformanceTest, Pages_EnrollmentsInKeyOrder) {
  std::vector<std::string> ids;
  for (int i = 0; i < 250; ++i) {
    char id[16];
    std::snprintf(id, sizeof(id), "dev-%03d", i);
    ids.push_back(id);
  }
  std::vector<std::string> shuffled = ids;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(42));
  // Concurrent puts let a group-committing store batch them; order must not matter.
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 10; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < shuffled.size(); i += 10) {
        if (!this->registry().PutEnrollment(MakeEnrollment(shuffled[i]), std::nullopt,
                                            this->actor_)) {
          ++failures;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);

  std::vector<std::string> seen;
  std::vector<size_t> page_sizes;
  PageRequest request{100, ""};
  for (;;) {
    auto page = this->registry().QueryEnrollments(request);
    ASSERT_TRUE(page.has_value()) << page.error().message();
    page_sizes.push_back(page->items.size());
    for (const Enrollment& e : page->items) seen.push_back(e.registration_id);
    if (page->continuation.empty()) break;
    request.continuation = page->continuation;
    ASSERT_LT(page_sizes.size(), 10u) << "paging does not end";
  }
  EXPECT_EQ(seen, ids);
  EXPECT_EQ(page_sizes, (std::vector<size_t>{100, 100, 50}));
}

TYPED_TEST_P(RegistryConformanceTest, Clamps_PageSizeToAtLeastOne) {
  this->PutOrDie(MakeEnrollment("a"));
  this->PutOrDie(MakeEnrollment("b"));
  for (int max_items : {0, -7}) {
    auto page = this->registry().QueryEnrollments(PageRequest{max_items, ""});
    ASSERT_TRUE(page.has_value()) << page.error().message();
    ASSERT_EQ(page->items.size(), 1u);
    EXPECT_EQ(page->items[0].registration_id, "a");
    EXPECT_FALSE(page->continuation.empty());
  }
}

TYPED_TEST_P(RegistryConformanceTest, Returns_EmptyLastPage) {
  auto page = this->registry().QueryEnrollments(PageRequest{});
  ASSERT_TRUE(page.has_value()) << page.error().message();
  EXPECT_TRUE(page->items.empty());
  EXPECT_TRUE(page->continuation.empty());

  this->PutOrDie(MakeEnrollment("a"));
  page = this->registry().QueryEnrollments(PageRequest{1, ""});
  ASSERT_TRUE(page.has_value());
  EXPECT_EQ(page->items.size(), 1u);
  EXPECT_TRUE(page->continuation.empty()) << "an exactly full last page needs no continuation";
}

TYPED_TEST_P(RegistryConformanceTest, Rejects_MalformedContinuation) {
  auto page = this->registry().QueryEnrollments(PageRequest{10, "not a token!"});
  ASSERT_FALSE(page.has_value());
  EXPECT_EQ(page.error().code(), ErrorCode::kInvalidArgument);
}

// Enrollment groups.

TYPED_TEST_P(RegistryConformanceTest, RoundTrips_AllGroupFields) {
  EnrollmentGroup put = this->PutOrDie(MakeGroup("group-1", "dev-", AttestationType::kTpm));
  ExpectSameGroup(put, MakeGroup("group-1", "dev-", AttestationType::kTpm));
  auto got = this->registry().GetEnrollmentGroup("group-1");
  ASSERT_TRUE(got.has_value()) << got.error().message();
  ExpectSameGroup(*got, put);
  ExpectSameVersion(got->settings, put.settings);
}

TYPED_TEST_P(RegistryConformanceTest, Keeps_GroupCreatedOnUpdate) {
  EnrollmentGroup first = this->PutOrDie(MakeGroup("group-1", "dev-"));
  this->clock_.Advance(std::chrono::seconds(30));
  EnrollmentGroup changed = MakeGroup("group-1", "sensor-");
  auto second = this->registry().PutEnrollmentGroup(changed, first.settings.etag, this->actor_);
  ASSERT_TRUE(second.has_value()) << second.error().message();
  EXPECT_EQ(Micros(second->settings.created), Micros(first.settings.created));
  EXPECT_NE(second->settings.etag, first.settings.etag);
  auto got = this->registry().GetEnrollmentGroup("group-1");
  ASSERT_TRUE(got.has_value());
  ExpectSameGroup(*got, changed);
  ExpectSameVersion(got->settings, second->settings);
}

TYPED_TEST_P(RegistryConformanceTest, Rejects_GroupEtagMismatch) {
  EnrollmentGroup first = this->PutOrDie(MakeGroup("group-1", "dev-"));
  auto put = this->registry().PutEnrollmentGroup(MakeGroup("group-1", "other-"),
                                                 std::string("stale"), this->actor_);
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(put.error().message(), HasSubstr("etag mismatch"));
  auto got = this->registry().GetEnrollmentGroup("group-1");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->registration_id_prefix, "dev-");
  ExpectSameVersion(got->settings, first.settings);
  EXPECT_EQ(this->AllAudit().size(), 1u);

  auto deleted =
      this->registry().DeleteEnrollmentGroup("group-1", std::string("stale"), this->actor_);
  ASSERT_FALSE(deleted.has_value());
  EXPECT_EQ(deleted.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(this->registry().GetEnrollmentGroup("group-1").has_value());
}

TYPED_TEST_P(RegistryConformanceTest, Deletes_Group) {
  this->PutOrDie(MakeGroup("group-1"));
  ASSERT_TRUE(this->registry().DeleteEnrollmentGroup("group-1", std::nullopt, this->actor_));
  auto got = this->registry().GetEnrollmentGroup("group-1");
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(got.error().message(), HasSubstr("group-1"));

  auto again = this->registry().DeleteEnrollmentGroup("group-1", std::nullopt, this->actor_);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(again.error().message(), HasSubstr("group-1"));
  std::vector<AuditRecord> audit = this->AllAudit();
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[0].action, "enrollmentGroup.create");
  EXPECT_EQ(audit[1].action, "enrollmentGroup.delete");
}

TYPED_TEST_P(RegistryConformanceTest, Pages_GroupsInKeyOrder) {
  for (int i = 24; i >= 0; --i) this->PutOrDie(MakeGroup("g" + std::to_string(100 + i)));
  std::vector<std::string> seen;
  PageRequest request{10, ""};
  int pages = 0;
  for (;;) {
    auto page = this->registry().QueryEnrollmentGroups(request);
    ASSERT_TRUE(page.has_value()) << page.error().message();
    ++pages;
    for (const auto& id : GroupIds(page->items)) seen.push_back(id);
    if (page->continuation.empty()) break;
    request.continuation = page->continuation;
  }
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(seen.size(), 25u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
}

TYPED_TEST_P(RegistryConformanceTest, Orders_GroupCandidatesLongestPrefixFirstThenCatchAll) {
  // Catch-all groups come in creation order, which here is the reverse of ID order.
  this->PutOrDie(MakeGroup("z-catch-all"));
  this->clock_.Advance(std::chrono::seconds(1));
  this->PutOrDie(MakeGroup("a-catch-all"));
  this->clock_.Advance(std::chrono::seconds(1));
  this->PutOrDie(MakeGroup("short", "dev-"));
  this->PutOrDie(MakeGroup("exact", "dev-eu-0042"));
  this->PutOrDie(MakeGroup("longer-than-id", "dev-eu-00421"));
  this->PutOrDie(MakeGroup("middle", "dev-eu-"));
  this->PutOrDie(MakeGroup("other-region", "dev-us-"));
  this->PutOrDie(MakeGroup("not-a-prefix", "eu-"));
  this->PutOrDie(MakeGroup("x509-same-prefix", "dev-", AttestationType::kX509));
  this->PutOrDie(MakeGroup("x509-catch-all", "", AttestationType::kX509));

  auto found = this->registry().FindGroupCandidates("dev-eu-0042", AttestationType::kSymmetricKey);
  ASSERT_TRUE(found.has_value()) << found.error().message();
  EXPECT_THAT(GroupIds(*found),
              ::testing::ElementsAre("exact", "middle", "short", "z-catch-all", "a-catch-all"));
  // The candidates are whole groups.
  ASSERT_FALSE(found->empty());
  ExpectSameGroup(found->front(), MakeGroup("exact", "dev-eu-0042"));
}

TYPED_TEST_P(RegistryConformanceTest, Filters_GroupCandidatesByAttestationType) {
  this->PutOrDie(MakeGroup("sym", "dev-"));
  this->PutOrDie(MakeGroup("x509-prefix", "dev-", AttestationType::kX509));
  this->PutOrDie(MakeGroup("x509-any", "", AttestationType::kX509));
  this->PutOrDie(MakeGroup("tpm-any", "", AttestationType::kTpm));

  auto x509 = this->registry().FindGroupCandidates("dev-1", AttestationType::kX509);
  ASSERT_TRUE(x509.has_value()) << x509.error().message();
  EXPECT_THAT(GroupIds(*x509), ::testing::ElementsAre("x509-prefix", "x509-any"));

  auto tpm = this->registry().FindGroupCandidates("sensor-1", AttestationType::kTpm);
  ASSERT_TRUE(tpm.has_value());
  EXPECT_THAT(GroupIds(*tpm), ::testing::ElementsAre("tpm-any"));

  auto none = this->registry().FindGroupCandidates("sensor-1", AttestationType::kSymmetricKey);
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
}

// Registrations.

TYPED_TEST_P(RegistryConformanceTest, RoundTrips_AllRegistrationFields) {
  Registration saved = this->SaveOrDie(MakeRegistration("dev-1", "group-1"));
  ExpectSameRegistration(saved, MakeRegistration("dev-1", "group-1"));
  EXPECT_FALSE(saved.etag.empty());
  auto got = this->registry().GetRegistration("dev-1");
  ASSERT_TRUE(got.has_value()) << got.error().message();
  ExpectSameRegistration(*got, saved);
  EXPECT_EQ(got->etag, saved.etag);
  EXPECT_EQ(Micros(got->created), Micros(saved.created));
  EXPECT_EQ(Micros(got->updated), Micros(saved.updated));
  std::vector<AuditRecord> audit = this->AllAudit();
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].action, "registration.assign");
  EXPECT_EQ(audit[0].object, "dev-1");
}

TYPED_TEST_P(RegistryConformanceTest, Keeps_RegistrationCreatedOnResave) {
  Registration first = this->SaveOrDie(MakeRegistration("dev-1"));
  this->clock_.Advance(std::chrono::hours(1));
  Registration again = MakeRegistration("dev-1");
  again.assigned_hub = "hub-b.example.net";
  again.substatus = "reprovisionedToInitialAssignment";
  Registration second = this->SaveOrDie(again);
  EXPECT_EQ(Micros(second.created), Micros(first.created));
  EXPECT_EQ(Micros(second.updated), Micros(StartTime() + std::chrono::hours(1)));
  EXPECT_NE(second.etag, first.etag);
  auto got = this->registry().GetRegistration("dev-1");
  ASSERT_TRUE(got.has_value());
  ExpectSameRegistration(*got, again);
  EXPECT_EQ(Micros(got->created), Micros(first.created));
}

TYPED_TEST_P(RegistryConformanceTest, Deletes_Registration) {
  Registration saved = this->SaveOrDie(MakeRegistration("dev-1"));
  auto stale = this->registry().DeleteRegistration("dev-1", std::string("stale"), this->actor_);
  ASSERT_FALSE(stale.has_value());
  EXPECT_EQ(stale.error().code(), ErrorCode::kFailedPrecondition);
  ASSERT_TRUE(this->registry().GetRegistration("dev-1").has_value());

  ASSERT_TRUE(this->registry().DeleteRegistration("dev-1", saved.etag, this->actor_));
  auto got = this->registry().GetRegistration("dev-1");
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(got.error().message(), HasSubstr("dev-1"));

  auto missing = this->registry().DeleteRegistration("dev-1", std::nullopt, this->actor_);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  std::vector<AuditRecord> audit = this->AllAudit();
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[1].action, "registration.delete");
}

TYPED_TEST_P(RegistryConformanceTest, Pages_RegistrationsOfOneGroup) {
  for (int i = 29; i >= 0; --i) {
    this->SaveOrDie(MakeRegistration("a" + std::to_string(100 + i), "A"));
  }
  for (int i = 0; i < 5; ++i) this->SaveOrDie(MakeRegistration("b" + std::to_string(i), "B"));
  for (int i = 0; i < 3; ++i) this->SaveOrDie(MakeRegistration("solo" + std::to_string(i)));

  std::vector<std::string> seen;
  PageRequest request{7, ""};
  for (int pages = 0;; ++pages) {
    ASSERT_LT(pages, 10);
    auto page = this->registry().QueryGroupRegistrations("A", request);
    ASSERT_TRUE(page.has_value()) << page.error().message();
    for (const Registration& r : page->items) {
      EXPECT_EQ(r.enrollment_group_id, "A");
      seen.push_back(r.registration_id);
    }
    if (page->continuation.empty()) break;
    request.continuation = page->continuation;
  }
  ASSERT_EQ(seen.size(), 30u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 30u);

  auto none = this->registry().QueryGroupRegistrations("C", PageRequest{});
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->items.empty());
}

// Challenges.

TYPED_TEST_P(RegistryConformanceTest, Stores_AndReplacesPendingChallenge) {
  auto none = this->registry().GetChallenge("tpm-1");
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code(), ErrorCode::kNotFound);

  auto expires = StartTime() + std::chrono::minutes(5);
  ASSERT_TRUE(this->registry().PutChallenge({"tpm-1", "Zmlyc3Q=", expires}, this->actor_));
  auto got = this->registry().GetChallenge("tpm-1");
  ASSERT_TRUE(got.has_value()) << got.error().message();
  EXPECT_EQ(got->registration_id, "tpm-1");
  EXPECT_EQ(got->secret, "Zmlyc3Q=");
  EXPECT_EQ(Micros(got->expires), Micros(expires));

  ASSERT_TRUE(this->registry().PutChallenge({"tpm-1", "c2Vjb25k", expires}, this->actor_));
  ASSERT_TRUE(this->registry().PutChallenge({"tpm-2", "b3RoZXI=", expires}, this->actor_));
  EXPECT_EQ(this->registry().GetChallenge("tpm-1")->secret, "c2Vjb25k");
  EXPECT_EQ(this->registry().GetChallenge("tpm-2")->secret, "b3RoZXI=");
  EXPECT_TRUE(this->AllAudit().empty());  // challenges are transient, not audited

  this->Reopen();
  EXPECT_EQ(this->registry().GetChallenge("tpm-1")->secret, "c2Vjb25k");
  auto empty_id = this->registry().PutChallenge({"", "eA==", expires}, this->actor_);
  ASSERT_FALSE(empty_id.has_value());
  EXPECT_EQ(empty_id.error().code(), ErrorCode::kInvalidArgument);
}

TYPED_TEST_P(RegistryConformanceTest, Expires_Challenge) {
  auto expires = StartTime() + std::chrono::minutes(5);
  ASSERT_TRUE(this->registry().PutChallenge({"tpm-1", "Zmlyc3Q=", expires}, this->actor_));
  this->clock_.Advance(std::chrono::minutes(5) - std::chrono::seconds(1));
  EXPECT_TRUE(this->registry().GetChallenge("tpm-1").has_value());
  this->clock_.Advance(std::chrono::seconds(1));
  auto expired = this->registry().GetChallenge("tpm-1");
  ASSERT_FALSE(expired.has_value());
  EXPECT_EQ(expired.error().code(), ErrorCode::kNotFound);
}

TYPED_TEST_P(RegistryConformanceTest, Consumes_ChallengeOnSaveRegistration) {
  auto expires = StartTime() + std::chrono::minutes(5);
  ASSERT_TRUE(this->registry().PutChallenge({"tpm-1", "Zmlyc3Q=", expires}, this->actor_));
  ASSERT_TRUE(this->registry().PutChallenge({"tpm-2", "b3RoZXI=", expires}, this->actor_));
  Registration r = MakeRegistration("tpm-1");
  r.attestation_type = AttestationType::kTpm;
  r.device_key = "Zmlyc3Q=";
  Registration saved = this->SaveOrDie(r);
  EXPECT_EQ(saved.device_key, "Zmlyc3Q=");
  auto consumed = this->registry().GetChallenge("tpm-1");
  ASSERT_FALSE(consumed.has_value());
  EXPECT_EQ(consumed.error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(this->registry().GetChallenge("tpm-2").has_value());  // only its own
  EXPECT_EQ(this->registry().GetRegistration("tpm-1")->device_key, "Zmlyc3Q=");
}

// Settings.

TYPED_TEST_P(RegistryConformanceTest, Returns_NulloptForUnsetSetting) {
  auto value = this->registry().GetSetting("idScope");
  ASSERT_TRUE(value.has_value()) << value.error().message();
  EXPECT_FALSE(value->has_value());
}

TYPED_TEST_P(RegistryConformanceTest, Replaces_Setting) {
  ASSERT_TRUE(this->registry().SetSetting("idScope", "0ne00000001", this->actor_));
  ASSERT_TRUE(this->registry().SetSetting("idScope", "0ne00000002", this->actor_));
  ASSERT_TRUE(this->registry().SetSetting("empty", "", this->actor_));
  auto value = this->registry().GetSetting("idScope");
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ(*value, std::optional<std::string>("0ne00000002"));
  auto empty = this->registry().GetSetting("empty");
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(*empty, std::optional<std::string>(""));
  std::vector<AuditRecord> audit = this->AllAudit();
  ASSERT_EQ(audit.size(), 3u);
  EXPECT_EQ(audit[0].action, "setting.set");
  EXPECT_EQ(audit[0].object, "idScope");
}

TYPED_TEST_P(RegistryConformanceTest, Keeps_FirstValueOfSetSettingIfAbsent) {
  auto first = this->registry().SetSettingIfAbsent("idScope", "0ne00000001", this->actor_);
  ASSERT_TRUE(first.has_value()) << first.error().message();
  EXPECT_EQ(*first, "0ne00000001");
  auto second = this->registry().SetSettingIfAbsent("idScope", "0ne00000002", this->actor_);
  ASSERT_TRUE(second.has_value()) << second.error().message();
  EXPECT_EQ(*second, "0ne00000001");
  EXPECT_EQ(*this->registry().GetSetting("idScope"), std::optional<std::string>("0ne00000001"));
  EXPECT_EQ(this->AllAudit().size(), 1u);  // only the write that stored something is audited
}

TYPED_TEST_P(RegistryConformanceTest, Agrees_OnOneValueWhenSetSettingIfAbsentRaces) {
  std::vector<std::string> seen(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&, i] {
      auto stored = this->registry().SetSettingIfAbsent("scope", "v" + std::to_string(i),
                                                         this->actor_);
      seen[i] = stored ? *stored : "error: " + stored.error().message();
    });
  }
  for (auto& t : threads) t.join();
  for (const std::string& value : seen) EXPECT_EQ(value, seen[0]);
  EXPECT_EQ(this->AllAudit().size(), 1u);
}

// Audit.

TYPED_TEST_P(RegistryConformanceTest, Appends_AuditRecordPerWriteInOrder) {
  Actor cli{"cli"};
  Actor device{"device:dev-1"};
  Enrollment e = this->PutOrDie(MakeEnrollment("dev-1"));
  this->clock_.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(this->registry().PutEnrollment(MakeEnrollment("dev-1"), e.settings.etag, cli));
  this->clock_.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(this->registry().PutEnrollmentGroup(MakeGroup("g"), std::nullopt, cli));
  ASSERT_TRUE(this->registry().PutEnrollmentGroup(MakeGroup("g"), std::nullopt, cli));
  ASSERT_TRUE(this->registry().SaveRegistration(MakeRegistration("dev-1"), device));
  ASSERT_TRUE(this->registry().SetSetting("idScope", "0ne1", cli));
  // Failed writes leave no record.
  ASSERT_FALSE(this->registry().DeleteEnrollment("nobody", std::nullopt, cli));
  ASSERT_FALSE(this->registry().PutEnrollment(MakeEnrollment("dev-1"), std::string("x"), cli));
  ASSERT_TRUE(this->registry().DeleteRegistration("dev-1", std::nullopt, cli));
  ASSERT_TRUE(this->registry().DeleteEnrollmentGroup("g", std::nullopt, cli));
  ASSERT_TRUE(this->registry().DeleteEnrollment("dev-1", std::nullopt, cli));

  struct Expected {
    std::string actor, action, object;
  };
  std::vector<Expected> expected = {
      {"service:registryWrite", "enrollment.create", "dev-1"},
      {"cli", "enrollment.update", "dev-1"},
      {"cli", "enrollmentGroup.create", "g"},
      {"cli", "enrollmentGroup.update", "g"},
      {"device:dev-1", "registration.assign", "dev-1"},
      {"cli", "setting.set", "idScope"},
      {"cli", "registration.delete", "dev-1"},
      {"cli", "enrollmentGroup.delete", "g"},
      {"cli", "enrollment.delete", "dev-1"},
  };
  std::vector<AuditRecord> audit = this->AllAudit();
  ASSERT_EQ(audit.size(), expected.size());
  for (size_t i = 0; i < audit.size(); ++i) {
    SCOPED_TRACE("record " + std::to_string(i));
    EXPECT_EQ(audit[i].actor, expected[i].actor);
    EXPECT_EQ(audit[i].action, expected[i].action);
    EXPECT_EQ(audit[i].object, expected[i].object);
    EXPECT_EQ(audit[i].outcome, "success");
    if (i > 0) {
      EXPECT_GT(audit[i].sequence, audit[i - 1].sequence);
    }
  }
  EXPECT_EQ(Micros(audit[0].time), Micros(StartTime()));
  EXPECT_EQ(Micros(audit[1].time), Micros(StartTime() + std::chrono::seconds(1)));
  EXPECT_EQ(Micros(audit[2].time), Micros(StartTime() + std::chrono::seconds(2)));

  auto after = this->registry().ListAudit(audit[2].sequence, 2);
  ASSERT_TRUE(after.has_value()) << after.error().message();
  ASSERT_EQ(after->size(), 2u);
  EXPECT_EQ((*after)[0].sequence, audit[3].sequence);
  EXPECT_EQ((*after)[1].sequence, audit[4].sequence);
}

// Durability and concurrency.

TYPED_TEST_P(RegistryConformanceTest, Persists_AcrossReopen) {
  Enrollment e = this->PutOrDie(MakeEnrollment("dev-1"));
  EnrollmentGroup g = this->PutOrDie(MakeGroup("g", "dev-"));
  Registration r = this->SaveOrDie(MakeRegistration("dev-1", "g"));
  ASSERT_TRUE(this->registry().SetSetting("idScope", "0ne1", this->actor_));
  std::vector<AuditRecord> audit = this->AllAudit();

  this->Reopen();

  auto got_e = this->registry().GetEnrollment("dev-1");
  ASSERT_TRUE(got_e.has_value()) << got_e.error().message();
  ExpectSameEnrollment(*got_e, e);
  ExpectSameVersion(got_e->settings, e.settings);
  auto got_g = this->registry().GetEnrollmentGroup("g");
  ASSERT_TRUE(got_g.has_value());
  ExpectSameGroup(*got_g, g);
  auto got_r = this->registry().GetRegistration("dev-1");
  ASSERT_TRUE(got_r.has_value());
  ExpectSameRegistration(*got_r, r);
  EXPECT_EQ(got_r->etag, r.etag);
  auto setting = this->registry().GetSetting("idScope");
  ASSERT_TRUE(setting.has_value());
  EXPECT_EQ(*setting, std::optional<std::string>("0ne1"));
  EXPECT_EQ(this->AllAudit().size(), audit.size());

  ASSERT_TRUE(this->registry().SetSetting("idScope", "0ne2", this->actor_));
  std::vector<AuditRecord> later = this->AllAudit();
  ASSERT_EQ(later.size(), audit.size() + 1);
  EXPECT_GT(later.back().sequence, audit.back().sequence);
}

TYPED_TEST_P(RegistryConformanceTest, Saves_ConcurrentRegistrationsFromManyThreads) {
  constexpr int kThreads = 64;
  constexpr int kPerThread = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Actor actor{"device:thread-" + std::to_string(t)};
      for (int i = 0; i < kPerThread; ++i) {
        Registration r =
            MakeRegistration("t" + std::to_string(t) + "-d" + std::to_string(i), "fleet");
        auto saved = this->registry().SaveRegistration(r, actor);
        if (!saved || saved->registration_id != r.registration_id || saved->etag.empty()) {
          ++failures;
        }
        // Interleave reads with the writes; each must see its own committed write.
        auto got = this->registry().GetRegistration(r.registration_id);
        if (!got || !saved || got->etag != saved->etag) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);

  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      std::string id = "t" + std::to_string(t) + "-d" + std::to_string(i);
      auto got = this->registry().GetRegistration(id);
      ASSERT_TRUE(got.has_value()) << id << ": " << got.error().message();
      EXPECT_EQ(got->device_id, id + "-device");
    }
  }
  size_t listed = 0;
  PageRequest request{1000, ""};
  for (;;) {
    auto page = this->registry().QueryGroupRegistrations("fleet", request);
    ASSERT_TRUE(page.has_value()) << page.error().message();
    listed += page->items.size();
    if (page->continuation.empty()) break;
    request.continuation = page->continuation;
  }
  EXPECT_EQ(listed, static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(this->AllAudit().size(), static_cast<size_t>(kThreads * kPerThread));
}

TYPED_TEST_P(RegistryConformanceTest, Isolates_FailedWritesAmongConcurrentWrites) {
  constexpr int kThreads = 32;
  std::vector<Enrollment> existing;
  for (int t = 0; t < kThreads; ++t) {
    existing.push_back(this->PutOrDie(MakeEnrollment("old-" + std::to_string(t))));
  }
  size_t audit_before = this->AllAudit().size();
  std::atomic<int> unexpected{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        // A stale update of an existing enrollment, then a fresh enrollment.
        Enrollment stale = MakeEnrollment("old-" + std::to_string(t));
        stale.device_id = "must-not-be-written";
        auto rejected = this->registry().PutEnrollment(stale, std::string("stale"), this->actor_);
        if (rejected || rejected.error().code() != ErrorCode::kFailedPrecondition) ++unexpected;
        auto created = this->registry().PutEnrollment(
            MakeEnrollment("new-" + std::to_string(t) + "-" + std::to_string(i)), std::nullopt,
            this->actor_);
        if (!created) ++unexpected;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(unexpected.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    auto got = this->registry().GetEnrollment("old-" + std::to_string(t));
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->device_id, existing[t].device_id);
    EXPECT_EQ(got->settings.etag, existing[t].settings.etag);
  }
  EXPECT_EQ(this->AllAudit().size(), audit_before + kThreads * 10);
}

// Certificate inventory.

// MakeCertificate returns an issued record with every field set; the thumbprints derive from
// serial and issuer, so records differing in either differ in thumbprint. not_after is
// expires_in after the test's start.
inline CertificateRecord MakeCertificate(const std::string& serial,
                                         const std::string& device_id = "dev-1",
                                         std::chrono::hours expires_in = std::chrono::hours(24),
                                         const std::string& issuer = "CN=devid Device CA") {
  CertificateRecord r;
  std::string tag = serial + "-" + std::to_string(std::hash<std::string>()(issuer) % 100000);
  r.sha256_thumbprint = "SHA256-" + tag;
  r.sha1_thumbprint = "SHA1-" + tag;
  r.serial = serial;
  r.subject = "CN=" + device_id + ",O=devid";
  r.issuer = issuer;
  r.issuer_key_id = "a1b2c3";
  r.not_before = StartTime() - std::chrono::hours(1);
  r.not_after = StartTime() + expires_in;
  r.device_id = device_id;
  r.profile = "device-client";
  r.source = CertificateSource::kIssued;
  // DER holds every byte value, NUL and bytes that are not UTF-8 included.
  r.der = std::string("\x30\x82\x00\x0a", 4) + serial + std::string("\x00\xff\x80\x7f", 4);
  return r;
}

// ExpectSameCertificate compares the fields a caller gives (not revocation or seen times).
inline void ExpectSameCertificate(const CertificateRecord& a, const CertificateRecord& b) {
  EXPECT_EQ(a.sha256_thumbprint, b.sha256_thumbprint);
  EXPECT_EQ(a.sha1_thumbprint, b.sha1_thumbprint);
  EXPECT_EQ(a.serial, b.serial);
  EXPECT_EQ(a.subject, b.subject);
  EXPECT_EQ(a.issuer, b.issuer);
  EXPECT_EQ(a.issuer_key_id, b.issuer_key_id);
  EXPECT_EQ(Micros(a.not_before), Micros(b.not_before));
  EXPECT_EQ(Micros(a.not_after), Micros(b.not_after));
  EXPECT_EQ(a.device_id, b.device_id);
  EXPECT_EQ(a.profile, b.profile);
  EXPECT_EQ(a.der, b.der);
}

inline std::vector<std::string> Serials(const std::vector<CertificateRecord>& records) {
  std::vector<std::string> serials;
  for (const CertificateRecord& r : records) serials.push_back(r.serial);
  return serials;
}

TYPED_TEST_P(RegistryConformanceTest, RoundTrips_AllCertificateFields) {
  CertificateRecord record = MakeCertificate("0A1B");
  record.revoked = true;  // ignored: a recorded certificate starts unrevoked
  record.revocation_reason = 4;
  record.first_seen = StartTime() - std::chrono::hours(100);  // ignored: the store's clock rules
  ASSERT_TRUE(this->registry().RecordCertificate(record, kAuditCertificateIssue, this->actor_));

  for (int pass = 0; pass < 2; ++pass) {
    SCOPED_TRACE(pass == 0 ? "as written" : "after reopening");
    std::vector<CertificateRecord> all = this->AllCertificates({});
    ASSERT_EQ(all.size(), 1u);
    const CertificateRecord& got = all[0];
    ExpectSameCertificate(got, record);
    EXPECT_EQ(got.source, CertificateSource::kIssued);
    EXPECT_FALSE(got.revoked);
    EXPECT_EQ(got.revocation_reason, 0);
    EXPECT_EQ(Micros(got.first_seen), Micros(StartTime()));
    EXPECT_EQ(Micros(got.last_seen), Micros(StartTime()));
    this->Reopen();
  }
  std::vector<AuditRecord> audit = this->AllAudit();
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].action, kAuditCertificateIssue);
  EXPECT_EQ(audit[0].object, "0A1B");
  EXPECT_EQ(audit[0].actor, this->actor_.name);

  ASSERT_TRUE(this->registry().RecordCertificate(MakeCertificate("0A1C"), kAuditCertificateRenew,
                                                 Actor{"cli"}));
  audit = this->AllAudit();
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[1].action, kAuditCertificateRenew);
  EXPECT_EQ(audit[1].object, "0A1C");
  EXPECT_EQ(audit[1].actor, "cli");
}

TYPED_TEST_P(RegistryConformanceTest, Queries_CertificatesByEachFilterField) {
  using std::chrono::hours;
  CertificateRecord a = MakeCertificate("01", "dev-a", hours(10));
  CertificateRecord b = MakeCertificate("02", "dev-a", hours(20));
  CertificateRecord c = MakeCertificate("03", "dev-b", hours(30));
  c.issuer_key_id = "ffee";
  CertificateRecord observed = MakeCertificate("04", "dev-b", hours(40), "CN=Manufacturer CA");
  observed.profile = "";
  for (const CertificateRecord* r : {&a, &b, &c}) {
    ASSERT_TRUE(this->registry().RecordCertificate(*r, kAuditCertificateIssue, this->actor_));
  }
  ASSERT_TRUE(this->registry().ObserveCertificate(observed));
  CertificateFilter by_serial;
  by_serial.serial = "02";
  ASSERT_TRUE(this->registry().RevokeCertificates(by_serial, 1, this->actor_));

  auto serials = [this](const CertificateFilter& filter) {
    return Serials(this->AllCertificates(filter));
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(serials({}), (V{"01", "02", "03", "04"}));
  CertificateFilter f;
  f.sha256_thumbprint = c.sha256_thumbprint;
  EXPECT_EQ(serials(f), V{"03"});
  f = {};
  f.sha1_thumbprint = a.sha1_thumbprint;
  EXPECT_EQ(serials(f), V{"01"});
  f = {};
  f.serial = "04";
  EXPECT_EQ(serials(f), V{"04"});
  f = {};
  f.issuer_key_id = "ffee";
  EXPECT_EQ(serials(f), V{"03"});
  f = {};
  f.device_id = "dev-a";
  EXPECT_EQ(serials(f), (V{"01", "02"}));
  f = {};
  f.source = CertificateSource::kObserved;
  EXPECT_EQ(serials(f), V{"04"});
  f.source = CertificateSource::kIssued;
  EXPECT_EQ(serials(f), (V{"01", "02", "03"}));
  f = {};
  f.revoked = true;
  EXPECT_EQ(serials(f), V{"02"});
  f.revoked = false;
  EXPECT_EQ(serials(f), (V{"01", "03", "04"}));
  // Fields combine: every set one must match.
  f = {};
  f.device_id = "dev-a";
  f.revoked = false;
  EXPECT_EQ(serials(f), V{"01"});
  f = {};
  f.device_id = "dev-b";
  f.source = CertificateSource::kIssued;
  f.issuer_key_id = "a1b2c3";
  EXPECT_TRUE(serials(f).empty());
  f = {};
  f.serial = "nothing";
  EXPECT_TRUE(serials(f).empty());

  auto observed_row = this->AllCertificates({.serial = std::string("04")});
  ASSERT_EQ(observed_row.size(), 1u);
  ExpectSameCertificate(observed_row[0], observed);
  EXPECT_EQ(observed_row[0].source, CertificateSource::kObserved);
}

TYPED_TEST_P(RegistryConformanceTest, Filters_CertificatesExpiringBefore) {
  using std::chrono::hours;
  ASSERT_TRUE(this->registry().RecordCertificate(MakeCertificate("01", "d", hours(1)),
                                                 kAuditCertificateIssue, this->actor_));
  ASSERT_TRUE(this->registry().RecordCertificate(MakeCertificate("02", "d", hours(48)),
                                                 kAuditCertificateIssue, this->actor_));
  ASSERT_TRUE(this->registry().RecordCertificate(MakeCertificate("03", "d", -hours(2)),
                                                 kAuditCertificateIssue, this->actor_));
  CertificateFilter f;
  f.expiring_before = StartTime() + hours(24);
  EXPECT_EQ(Serials(this->AllCertificates(f)), (std::vector<std::string>{"03", "01"}));
  f.expiring_before = StartTime() + hours(48);  // strictly before
  EXPECT_EQ(Serials(this->AllCertificates(f)), (std::vector<std::string>{"03", "01"}));
  f.expiring_before = StartTime() - hours(3);
  EXPECT_TRUE(this->AllCertificates(f).empty());
}

TYPED_TEST_P(RegistryConformanceTest, Pages_CertificatesByExpiryThenThumbprint) {
  // Five expiry times, five certificates each: the thumbprint breaks the ties.
  std::vector<CertificateRecord> records;
  for (int i = 0; i < 25; ++i) {
    char serial[8];
    std::snprintf(serial, sizeof(serial), "%02X", (i * 7) % 25);
    records.push_back(MakeCertificate(serial, "dev-" + std::to_string(i % 3),
                                      std::chrono::hours(24 * (5 - i % 5))));
  }
  for (const CertificateRecord& r : records) {
    ASSERT_TRUE(this->registry().RecordCertificate(r, kAuditCertificateIssue, this->actor_));
  }
  std::vector<CertificateRecord> expected = records;
  std::sort(expected.begin(), expected.end(), [](const auto& a, const auto& b) {
    return std::tie(a.not_after, a.sha256_thumbprint) < std::tie(b.not_after, b.sha256_thumbprint);
  });

  std::vector<std::string> seen;
  std::vector<size_t> sizes;
  PageRequest request{7, ""};
  for (;;) {
    auto page = this->registry().QueryCertificates({}, request);
    ASSERT_TRUE(page.has_value()) << page.error().message();
    sizes.push_back(page->items.size());
    for (const CertificateRecord& r : page->items) seen.push_back(r.sha256_thumbprint);
    if (page->continuation.empty()) break;
    request.continuation = page->continuation;
    ASSERT_LT(sizes.size(), 10u) << "paging does not end";
  }
  std::vector<std::string> expected_order;
  for (const CertificateRecord& r : expected) expected_order.push_back(r.sha256_thumbprint);
  EXPECT_EQ(seen, expected_order);
  EXPECT_EQ(sizes, (std::vector<size_t>{7, 7, 7, 4}));

  // A filtered query pages the same way.
  CertificateFilter dev0;
  dev0.device_id = "dev-0";
  std::vector<CertificateRecord> filtered = this->AllCertificates(dev0, 2);
  EXPECT_EQ(filtered.size(), 9u);
  EXPECT_TRUE(std::is_sorted(filtered.begin(), filtered.end(), [](const auto& a, const auto& b) {
    return std::tie(a.not_after, a.sha256_thumbprint) < std::tie(b.not_after, b.sha256_thumbprint);
  }));

  for (std::string token : {"not a token!", "3132", "41"}) {
    auto bad = this->registry().QueryCertificates({}, PageRequest{10, token});
    ASSERT_FALSE(bad.has_value()) << token;
    EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(bad.error().message(), HasSubstr("continuation"));
  }
}

TYPED_TEST_P(RegistryConformanceTest, Rejects_DuplicateCertificateThumbprint) {
  CertificateRecord first = MakeCertificate("0A");
  ASSERT_TRUE(this->registry().RecordCertificate(first, kAuditCertificateIssue, this->actor_));
  CertificateRecord again = MakeCertificate("0B", "other-device");
  again.sha256_thumbprint = first.sha256_thumbprint;

  auto recorded = this->registry().RecordCertificate(again, kAuditCertificateIssue, this->actor_);
  ASSERT_FALSE(recorded.has_value());
  EXPECT_EQ(recorded.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_THAT(recorded.error().message(), HasSubstr(first.sha256_thumbprint));
  EXPECT_THAT(recorded.error().message(), HasSubstr("already recorded"));

  std::vector<CertificateRecord> all = this->AllCertificates({});
  ASSERT_EQ(all.size(), 1u);
  ExpectSameCertificate(all[0], first);
  EXPECT_EQ(this->AllAudit().size(), 1u);
}

TYPED_TEST_P(RegistryConformanceTest, Rejects_DuplicateCertificateIssuerAndSerial) {
  CertificateRecord first = MakeCertificate("0A");
  ASSERT_TRUE(this->registry().RecordCertificate(first, kAuditCertificateIssue, this->actor_));
  CertificateRecord again = MakeCertificate("0A", "other-device");
  again.sha256_thumbprint = "ANOTHER-SHA256";
  again.sha1_thumbprint = "ANOTHER-SHA1";

  auto recorded = this->registry().RecordCertificate(again, kAuditCertificateIssue, this->actor_);
  ASSERT_FALSE(recorded.has_value());
  EXPECT_EQ(recorded.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_THAT(recorded.error().message(), HasSubstr("serial 0A"));
  // Observing a different certificate with a recorded (issuer, serial) is refused too.
  auto observed = this->registry().ObserveCertificate(again);
  ASSERT_FALSE(observed.has_value());
  EXPECT_EQ(observed.error().code(), ErrorCode::kAlreadyExists);

  std::vector<CertificateRecord> all = this->AllCertificates({});
  ASSERT_EQ(all.size(), 1u);
  ExpectSameCertificate(all[0], first);
  EXPECT_EQ(this->AllAudit().size(), 1u);

  // The same serial from another issuer is another certificate.
  CertificateRecord other_issuer =
      MakeCertificate("0A", "dev-1", std::chrono::hours(24), "CN=Other");
  ASSERT_TRUE(
      this->registry().RecordCertificate(other_issuer, kAuditCertificateIssue, this->actor_));
  EXPECT_EQ(this->AllCertificates({}).size(), 2u);
}

TYPED_TEST_P(RegistryConformanceTest, Rejects_IncompleteCertificateRecord) {
  CertificateRecord no_thumbprint = MakeCertificate("0A");
  no_thumbprint.sha256_thumbprint = "";
  CertificateRecord no_serial = MakeCertificate("0B");
  no_serial.serial = "";
  for (const CertificateRecord& r : {no_thumbprint, no_serial}) {
    auto recorded = this->registry().RecordCertificate(r, kAuditCertificateIssue, this->actor_);
    ASSERT_FALSE(recorded.has_value());
    EXPECT_EQ(recorded.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(recorded.error().message(), HasSubstr("is empty"));
    auto observed = this->registry().ObserveCertificate(r);
    ASSERT_FALSE(observed.has_value());
    EXPECT_EQ(observed.error().code(), ErrorCode::kInvalidArgument);
  }
  auto wrong_action =
      this->registry().RecordCertificate(MakeCertificate("0C"), "enrollment.create", this->actor_);
  ASSERT_FALSE(wrong_action.has_value());
  EXPECT_EQ(wrong_action.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(wrong_action.error().message(), HasSubstr("enrollment.create"));
  EXPECT_TRUE(this->AllCertificates({}).empty());
  EXPECT_TRUE(this->AllAudit().empty());
}

TYPED_TEST_P(RegistryConformanceTest, Observes_UnknownCertificateThenOnlyMovesLastSeen) {
  CertificateRecord presented = MakeCertificate("0F", "", std::chrono::hours(24), "CN=Vendor");
  presented.profile = "";
  presented.source = CertificateSource::kIssued;  // ignored: an observation is kObserved
  ASSERT_TRUE(this->registry().ObserveCertificate(presented));
  this->clock_.Advance(std::chrono::minutes(10));
  CertificateRecord changed = presented;
  changed.subject = "CN=changed";
  changed.device_id = "someone";
  ASSERT_TRUE(this->registry().ObserveCertificate(changed));

  std::vector<CertificateRecord> all = this->AllCertificates({});
  ASSERT_EQ(all.size(), 1u);
  ExpectSameCertificate(all[0], presented);
  EXPECT_EQ(all[0].source, CertificateSource::kObserved);
  EXPECT_FALSE(all[0].revoked);
  EXPECT_EQ(Micros(all[0].first_seen), Micros(StartTime()));
  EXPECT_EQ(Micros(all[0].last_seen), Micros(StartTime() + std::chrono::minutes(10)));

  // A node whose clock lags does not move last_seen back.
  this->clock_.Set(StartTime() + std::chrono::minutes(5));
  ASSERT_TRUE(this->registry().ObserveCertificate(presented));
  all = this->AllCertificates({});
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(Micros(all[0].last_seen), Micros(StartTime() + std::chrono::minutes(10)));
  EXPECT_TRUE(this->AllAudit().empty());  // observations are not audited
}

TYPED_TEST_P(RegistryConformanceTest, Observes_IssuedCertificateWithoutMakingItObserved) {
  CertificateRecord issued = MakeCertificate("10");
  ASSERT_TRUE(this->registry().RecordCertificate(issued, kAuditCertificateIssue, this->actor_));
  this->clock_.Advance(std::chrono::hours(2));
  CertificateRecord presented = issued;
  presented.source = CertificateSource::kObserved;
  presented.profile = "";
  ASSERT_TRUE(this->registry().ObserveCertificate(presented));

  std::vector<CertificateRecord> all = this->AllCertificates({});
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].source, CertificateSource::kIssued);
  EXPECT_EQ(all[0].profile, "device-client");
  EXPECT_EQ(Micros(all[0].first_seen), Micros(StartTime()));
  EXPECT_EQ(Micros(all[0].last_seen), Micros(StartTime() + std::chrono::hours(2)));
  EXPECT_EQ(this->AllAudit().size(), 1u);
}

TYPED_TEST_P(RegistryConformanceTest, Revokes_BySerialThumbprintAndDevice) {
  using std::chrono::hours;
  ASSERT_TRUE(this->registry().RevocationVersion().has_value());
  EXPECT_EQ(*this->registry().RevocationVersion(), 0);
  std::vector<CertificateRecord> records = {
      MakeCertificate("01", "dev-a", hours(10)), MakeCertificate("02", "dev-b", hours(20)),
      MakeCertificate("03", "dev-c", hours(30)), MakeCertificate("04", "dev-c", hours(40)),
      MakeCertificate("05", "dev-d", hours(50))};
  for (const CertificateRecord& r : records) {
    ASSERT_TRUE(this->registry().RecordCertificate(r, kAuditCertificateIssue, this->actor_));
  }
  size_t audit_before = this->AllAudit().size();
  this->clock_.Advance(std::chrono::minutes(1));
  Actor cli{"cli"};

  CertificateFilter by_serial;
  by_serial.serial = "01";
  auto revoked = this->registry().RevokeCertificates(by_serial, 1, cli);
  ASSERT_TRUE(revoked.has_value()) << revoked.error().message();
  ASSERT_EQ(revoked->size(), 1u);
  ExpectSameCertificate((*revoked)[0], records[0]);
  EXPECT_TRUE((*revoked)[0].revoked);
  EXPECT_EQ((*revoked)[0].revocation_reason, 1);
  EXPECT_EQ(Micros((*revoked)[0].revoked_at), Micros(StartTime() + std::chrono::minutes(1)));
  EXPECT_EQ(*this->registry().RevocationVersion(), 1);

  CertificateFilter by_thumbprint;
  by_thumbprint.sha256_thumbprint = records[1].sha256_thumbprint;
  revoked = this->registry().RevokeCertificates(by_thumbprint, 4, cli);
  ASSERT_TRUE(revoked.has_value()) << revoked.error().message();
  EXPECT_EQ(Serials(*revoked), std::vector<std::string>{"02"});
  EXPECT_EQ(*this->registry().RevocationVersion(), 2);

  CertificateFilter by_device;
  by_device.device_id = "dev-c";
  revoked = this->registry().RevokeCertificates(by_device, 0, cli);
  ASSERT_TRUE(revoked.has_value()) << revoked.error().message();
  EXPECT_EQ(Serials(*revoked), (std::vector<std::string>{"03", "04"}));
  EXPECT_EQ(*this->registry().RevocationVersion(), 3);

  // The store shows the revocations; the untouched certificate stays valid.
  CertificateFilter revoked_only;
  revoked_only.revoked = true;
  std::vector<CertificateRecord> stored = this->AllCertificates(revoked_only);
  EXPECT_EQ(Serials(stored), (std::vector<std::string>{"01", "02", "03", "04"}));
  EXPECT_EQ(stored[1].revocation_reason, 4);
  revoked_only.revoked = false;
  EXPECT_EQ(Serials(this->AllCertificates(revoked_only)), std::vector<std::string>{"05"});

  // One audit record per revoked certificate, naming its serial and the reason.
  std::vector<AuditRecord> audit = this->AllAudit();
  ASSERT_EQ(audit.size(), audit_before + 4);
  std::vector<std::string> objects;
  for (size_t i = audit_before; i < audit.size(); ++i) {
    EXPECT_EQ(audit[i].action, kAuditCertificateRevoke);
    EXPECT_EQ(audit[i].actor, "cli");
    EXPECT_THAT(audit[i].outcome, HasSubstr("success"));
    objects.push_back(audit[i].object);
  }
  EXPECT_EQ(objects, (std::vector<std::string>{"01", "02", "03", "04"}));
  EXPECT_THAT(audit[audit_before].outcome, HasSubstr("reason 1"));
  EXPECT_THAT(audit[audit_before + 1].outcome, HasSubstr("reason 4"));

  // The version is the store's, not the process's.
  this->Reopen();
  EXPECT_EQ(*this->registry().RevocationVersion(), 3);
  EXPECT_EQ(this->AllCertificates(revoked_only).size(), 1u);
}

TYPED_TEST_P(RegistryConformanceTest, Rejects_RevokeOfUnknownSerial) {
  ASSERT_TRUE(this->registry().RecordCertificate(MakeCertificate("01"), kAuditCertificateIssue,
                                                 this->actor_));
  CertificateFilter unknown;
  unknown.serial = "DEAD";
  auto revoked = this->registry().RevokeCertificates(unknown, 1, this->actor_);
  ASSERT_FALSE(revoked.has_value());
  EXPECT_EQ(revoked.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(revoked.error().message(), HasSubstr("DEAD"));
  EXPECT_EQ(*this->registry().RevocationVersion(), 0);
  EXPECT_EQ(this->AllAudit().size(), 1u);
  CertificateFilter unrevoked;
  unrevoked.revoked = false;
  EXPECT_EQ(this->AllCertificates(unrevoked).size(), 1u);
}

TYPED_TEST_P(RegistryConformanceTest, Rejects_RevokeWithEmptyFilterOrBadReason) {
  ASSERT_TRUE(this->registry().RecordCertificate(MakeCertificate("01"), kAuditCertificateIssue,
                                                 this->actor_));
  auto everything = this->registry().RevokeCertificates({}, 1, this->actor_);
  ASSERT_FALSE(everything.has_value());
  EXPECT_EQ(everything.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(everything.error().message(), HasSubstr("filter is empty"));

  CertificateFilter by_serial;
  by_serial.serial = "01";
  for (int reason : {-1, 7, 8, 11}) {
    auto bad = this->registry().RevokeCertificates(by_serial, reason, this->actor_);
    ASSERT_FALSE(bad.has_value()) << reason;
    EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(bad.error().message(), HasSubstr("CRL reason"));
  }
  EXPECT_EQ(*this->registry().RevocationVersion(), 0);
  EXPECT_EQ(this->AllAudit().size(), 1u);
  std::vector<CertificateRecord> all = this->AllCertificates({});
  ASSERT_EQ(all.size(), 1u);
  EXPECT_FALSE(all[0].revoked);
}

TYPED_TEST_P(RegistryConformanceTest, Returns_NothingWhenRevokingRevokedCertificateAgain) {
  ASSERT_TRUE(this->registry().RecordCertificate(MakeCertificate("01"), kAuditCertificateIssue,
                                                 this->actor_));
  CertificateFilter by_serial;
  by_serial.serial = "01";
  ASSERT_TRUE(this->registry().RevokeCertificates(by_serial, 1, this->actor_));
  size_t audit_before = this->AllAudit().size();
  this->clock_.Advance(std::chrono::hours(1));

  auto again = this->registry().RevokeCertificates(by_serial, 4, this->actor_);
  ASSERT_TRUE(again.has_value()) << again.error().message();
  EXPECT_TRUE(again->empty());
  EXPECT_EQ(this->AllAudit().size(), audit_before);
  EXPECT_EQ(*this->registry().RevocationVersion(), 1);
  std::vector<CertificateRecord> all = this->AllCertificates({});
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].revocation_reason, 1);  // the first revocation stands
  EXPECT_EQ(Micros(all[0].revoked_at), Micros(StartTime()));
}

TYPED_TEST_P(RegistryConformanceTest, Never_RevokesObservedCertificate) {
  CertificateRecord presented = MakeCertificate("0F", "dev-1", std::chrono::hours(24), "CN=Vendor");
  ASSERT_TRUE(this->registry().ObserveCertificate(presented));
  CertificateFilter by_serial;
  by_serial.serial = "0F";
  auto revoked = this->registry().RevokeCertificates(by_serial, 1, this->actor_);
  ASSERT_FALSE(revoked.has_value());
  EXPECT_EQ(revoked.error().code(), ErrorCode::kNotFound);

  // A device filter revokes its issued certificates and leaves the observed one alone.
  ASSERT_TRUE(this->registry().RecordCertificate(MakeCertificate("01"), kAuditCertificateIssue,
                                                 this->actor_));
  CertificateFilter by_device;
  by_device.device_id = "dev-1";
  auto issued_only = this->registry().RevokeCertificates(by_device, 1, this->actor_);
  ASSERT_TRUE(issued_only.has_value()) << issued_only.error().message();
  EXPECT_EQ(Serials(*issued_only), std::vector<std::string>{"01"});
  std::vector<CertificateRecord> observed = this->AllCertificates(by_serial);
  ASSERT_EQ(observed.size(), 1u);
  EXPECT_FALSE(observed[0].revoked);
}

TYPED_TEST_P(RegistryConformanceTest, Records_OneOfConcurrentCertificatesWithOneSerial) {
  constexpr int kThreads = 16;
  std::vector<Status> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread signed its own certificate with the same serial: different thumbprints.
      CertificateRecord r = MakeCertificate("5E5E", "dev-" + std::to_string(t));
      r.sha256_thumbprint = "SHA256-THREAD-" + std::to_string(t);
      r.sha1_thumbprint = "SHA1-THREAD-" + std::to_string(t);
      results[t] = this->registry().RecordCertificate(r, kAuditCertificateIssue, this->actor_);
    });
  }
  for (auto& thread : threads) thread.join();
  int successes = 0;
  for (const Status& s : results) {
    if (s) {
      ++successes;
    } else {
      EXPECT_EQ(s.error().code(), ErrorCode::kAlreadyExists) << s.error().message();
    }
  }
  EXPECT_EQ(successes, 1);
  std::vector<CertificateRecord> all = this->AllCertificates({});
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].serial, "5E5E");
  EXPECT_EQ(this->AllAudit().size(), 1u);
}

REGISTER_TYPED_TEST_SUITE_P(
    RegistryConformanceTest, Keeps_FirstValueOfSetSettingIfAbsent,
    Agrees_OnOneValueWhenSetSettingIfAbsentRaces, RoundTrips_AllEnrollmentFields, RoundTrips_EmptyFields,
    Keeps_CreatedOnUpdate, Rejects_EtagMismatch, Accepts_WildcardIfMatchOnExistingRow,
    Rejects_IfMatchOnMissingEnrollment, Rejects_GetOfMissingEnrollment,
    Rejects_DeleteOfMissingEnrollment, Deletes_Enrollment, Rejects_DeleteWithEtagMismatch,
    Rejects_EmptyIds, Pages_EnrollmentsInKeyOrder, Clamps_PageSizeToAtLeastOne,
    Returns_EmptyLastPage, Rejects_MalformedContinuation, RoundTrips_AllGroupFields,
    Keeps_GroupCreatedOnUpdate, Rejects_GroupEtagMismatch, Deletes_Group, Pages_GroupsInKeyOrder,
    Orders_GroupCandidatesLongestPrefixFirstThenCatchAll, Filters_GroupCandidatesByAttestationType,
    RoundTrips_AllRegistrationFields, Keeps_RegistrationCreatedOnResave, Deletes_Registration,
    Pages_RegistrationsOfOneGroup, Stores_AndReplacesPendingChallenge, Expires_Challenge,
    Consumes_ChallengeOnSaveRegistration, Returns_NulloptForUnsetSetting, Replaces_Setting,
    Appends_AuditRecordPerWriteInOrder, Persists_AcrossReopen,
    Saves_ConcurrentRegistrationsFromManyThreads, Isolates_FailedWritesAmongConcurrentWrites,
    RoundTrips_AllCertificateFields, Queries_CertificatesByEachFilterField,
    Filters_CertificatesExpiringBefore, Pages_CertificatesByExpiryThenThumbprint,
    Rejects_DuplicateCertificateThumbprint, Rejects_DuplicateCertificateIssuerAndSerial,
    Rejects_IncompleteCertificateRecord, Observes_UnknownCertificateThenOnlyMovesLastSeen,
    Observes_IssuedCertificateWithoutMakingItObserved, Revokes_BySerialThumbprintAndDevice,
    Rejects_RevokeOfUnknownSerial, Rejects_RevokeWithEmptyFilterOrBadReason,
    Returns_NothingWhenRevokingRevokedCertificateAgain, Never_RevokesObservedCertificate,
    Records_OneOfConcurrentCertificatesWithOneSerial);

}  // namespace devid::registry::conformance
