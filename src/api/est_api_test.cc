// EST (RFC 7030) through the real request path: Router → EstApi → verifiers → SQLite inventory,
// with a fake clock and an in-memory CA. Every refusal asserts that no certificate was recorded.

#include "api/est_api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include <chrono>

#include "api/testing/api_fixture.h"
#include "ca/inventory.h"
#include "ca/testing/mini_ca.h"
#include "ca/testing/test_csr.h"
#include "ossl/base64.h"
#include "pki/crl_reason.h"
#include "pki/pkcs7.h"
#include "pki/sas_token.h"

namespace devid::api {
namespace {

using ca::testing::MakeTestCsrDer;
using ca::testing::TestCsr;
using ca::testing::TestKey;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kDevice[] = "est-device-1";

class EstApiTest : public testing::ApiFixture {
 protected:
  void SetUp() override {
    ApiFixture::SetUp();
    PutSymmetricEnrollment(kDevice);
  }

  // Est posts body to /.well-known/est/<operation>, with the SAS token authorization ("" = none)
  // and client as the TLS client certificate (null = none).
  Response Est(const std::string& operation, const std::string& body,
               const std::string& authorization = "", const pki::Certificate* client = nullptr,
               const std::string& method = "POST") {
    Request request;
    request.method = method;
    request.target = "/.well-known/est/" + operation;
    request.body = body;
    request.headers.emplace_back("content-type", "application/pkcs10");
    if (!authorization.empty()) request.headers.emplace_back("authorization", authorization);
    if (client != nullptr) request.peer_certificates_der.push_back(client->ToDer());
    return router_->Handle(request);
  }

  static std::string Csr(const TestCsr& spec) { return ossl::Base64Encode(MakeTestCsrDer(spec)); }
  static TestCsr For(const std::string& cn, EVP_PKEY* key = nullptr) {
    return {.subject = {{"CN", cn}}, .key = key};
  }

  std::string Sas(const std::string& registration_id = kDevice) {
    return DeviceToken(kPrimary, registration_id);
  }

  static std::string Unbase64(const std::string& body) {
    std::string compact;
    for (char c : body) {
      if (!std::isspace(static_cast<unsigned char>(c))) compact += c;
    }
    auto der = ossl::Base64Decode(compact);
    EXPECT_TRUE(der.has_value());
    return der ? std::string(der->begin(), der->end()) : "";
  }

  static pki::Certificate FromPkcs7(const std::string& body) {
    auto certificates = pki::CertificatesFromPkcs7Der(Unbase64(body));
    EXPECT_TRUE(certificates.has_value());
    EXPECT_EQ(certificates->size(), 1u);
    return std::move(certificates->front());
  }

  // Enroll gets a certificate for kDevice by SAS token with key (null = a fresh P-256 key).
  pki::Certificate Enroll(EVP_PKEY* key = nullptr) {
    Response response = Est("simpleenroll", Csr(For(kDevice, key)), Sas());
    EXPECT_EQ(response.status, 200) << response.body;
    return FromPkcs7(response.body);
  }

  std::vector<registry::CertificateRecord> Inventory(
      std::optional<registry::CertificateSource> source = registry::CertificateSource::kIssued) {
    registry::CertificateFilter filter;
    filter.source = source;
    auto page = registry_->QueryCertificates(filter, {.max_items = 1000});
    EXPECT_TRUE(page.has_value()) << page.error().message();
    return page ? page->items : std::vector<registry::CertificateRecord>{};
  }

  // ExpectRefused checks a refusal's status and message and that the inventory and the audit
  // log did not change.
  void ExpectRefused(const Response& response, int status, const std::string& message,
                     size_t issued_before, size_t audit_before) {
    EXPECT_EQ(response.status, status) << response.body;
    EXPECT_THAT(response.body, HasSubstr(message));
    EXPECT_EQ(Inventory().size(), issued_before);
    EXPECT_EQ(AuditCount(), audit_before);
  }

  void Revoke(const pki::Certificate& certificate) {
    registry::CertificateFilter filter;
    filter.serial = certificate.SerialHex();
    auto revoked = registry_->RevokeCertificates(filter, pki::kKeyCompromise, {"test"});
    ASSERT_TRUE(revoked.has_value()) << revoked.error().message();
    ASSERT_EQ(revoked->size(), 1u);
  }

  registry::AuditRecord LastAudit() {
    auto records = registry_->ListAudit(0, 100000);
    EXPECT_TRUE(records.has_value() && !records->empty());
    return records->back();
  }
};

TEST_F(EstApiTest, SimpleEnroll_WithSasToken_IssuesAndRecordsTheCertificate) {
  pki::Certificate certificate = Enroll();
  EXPECT_EQ(certificate.SubjectCommonName(), kDevice);
  EXPECT_TRUE(authority_->Verify(certificate, X509_PURPOSE_SSL_CLIENT).has_value());
  auto issued = Inventory();
  ASSERT_EQ(issued.size(), 1u);
  EXPECT_EQ(issued[0].sha256_thumbprint, certificate.Sha256Thumbprint());
  EXPECT_EQ(issued[0].device_id, kDevice);
  EXPECT_EQ(issued[0].profile, "device-client");
  registry::AuditRecord audit = LastAudit();
  EXPECT_EQ(audit.action, registry::kAuditCertificateIssue);
  EXPECT_EQ(audit.actor, std::string("device:") + kDevice);
  EXPECT_EQ(audit.object, certificate.SerialHex());
}

TEST_F(EstApiTest, SimpleEnroll_Accepts_Rsa2048AndEd25519Keys) {
  for (const char* kind : {"RSA-2048", "ED25519"}) {
    auto key = TestKey(kind);
    Response response = Est("simpleenroll", Csr(For(kDevice, key.get())), Sas());
    EXPECT_EQ(response.status, 200) << kind << ": " << response.body;
  }
  EXPECT_EQ(Inventory().size(), 2u);
}

TEST_F(EstApiTest, SimpleEnroll_Rejects_MissingCredentials) {
  size_t audit = AuditCount();
  Response response = Est("simpleenroll", Csr(For(kDevice)));
  ExpectRefused(response, 401,
                "needs the device's SAS token in Authorization or its devid "
                "certificate",
                0, audit);
}

TEST_F(EstApiTest, SimpleEnroll_Rejects_BadSignature) {
  size_t audit = AuditCount();
  TestCsr spec = For(kDevice);
  spec.corrupt_signature = true;
  ExpectRefused(Est("simpleenroll", Csr(spec), Sas()), 400, "signature does not verify", 0, audit);
}

TEST_F(EstApiTest, SimpleEnroll_Rejects_SubjectOtherThanTheTokensDevice) {
  PutSymmetricEnrollment("est-device-2");
  size_t audit = AuditCount();
  ExpectRefused(Est("simpleenroll", Csr(For("est-device-2")), Sas()), 403,
                "is not the registration ID the SAS token was issued for", 0, audit);
}

TEST_F(EstApiTest, SimpleEnroll_Rejects_WeakKeys) {
  size_t audit = AuditCount();
  auto rsa1024 = TestKey("RSA-1024");
  ExpectRefused(Est("simpleenroll", Csr(For(kDevice, rsa1024.get())), Sas()), 400,
                "RSA key of 1024 bits", 0, audit);
  auto p192 = TestKey("P-192");
  ExpectRefused(Est("simpleenroll", Csr(For(kDevice, p192.get())), Sas()), 400,
                "only P-256 and P-384", 0, audit);
}

TEST_F(EstApiTest, SimpleEnroll_Rejects_UnknownAttributesAndChallengePassword) {
  size_t audit = AuditCount();
  TestCsr unknown = For(kDevice);
  unknown.extra_attribute_nid = NID_pkcs9_unstructuredName;
  ExpectRefused(Est("simpleenroll", Csr(unknown), Sas()), 400,
                "unsupported attribute unstructuredName", 0, audit);
  TestCsr password = For(kDevice);
  password.challenge_password = "hunter2";
  ExpectRefused(Est("simpleenroll", Csr(password), Sas()), 400, "challengePassword", 0, audit);
}

TEST_F(EstApiTest, SimpleEnroll_Rejects_ExtraSubjectAttributesAndSubjectAltName) {
  size_t audit = AuditCount();
  ExpectRefused(Est("simpleenroll", Csr({.subject = {{"CN", kDevice}, {"O", "Contoso"}}}), Sas()),
                400, "subject carries O", 0, audit);
  TestCsr san = For(kDevice);
  san.extensions = {{NID_subject_alt_name, "DNS:est-device-1.example.com"}};
  ExpectRefused(Est("simpleenroll", Csr(san), Sas()), 400, "subjectAltName", 0, audit);
}

TEST_F(EstApiTest, SimpleEnroll_Rejects_WrongContentTypeAndMethod) {
  Request request;
  request.method = "POST";
  request.target = "/.well-known/est/simpleenroll";
  request.body = Csr(For(kDevice));
  request.headers = {{"authorization", Sas()}, {"content-type", "application/json"}};
  EXPECT_EQ(router_->Handle(request).status, 415);
  EXPECT_EQ(Est("simpleenroll", "", Sas(), nullptr, "GET").status, 405);
  EXPECT_TRUE(Inventory().empty());
}

TEST_F(EstApiTest, SimpleEnroll_WithClientCertificate_IssuesForTheSameDevice) {
  pki::Certificate current = Enroll();
  Response response = Est("simpleenroll", Csr(For(kDevice)), "", &current);
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(FromPkcs7(response.body).SubjectCommonName(), kDevice);
  EXPECT_EQ(Inventory().size(), 2u);
  EXPECT_EQ(LastAudit().action, registry::kAuditCertificateIssue);
}

TEST_F(EstApiTest, SimpleEnroll_WithClientCertificate_Rejects_AnotherDevicesSubject) {
  pki::Certificate current = Enroll();
  PutSymmetricEnrollment("est-device-2");
  size_t audit = AuditCount();
  ExpectRefused(Est("simpleenroll", Csr(For("est-device-2")), "", &current), 403,
                "is not the registration ID \"est-device-1\" of the TLS client certificate", 1,
                audit);
}

TEST_F(EstApiTest, SimpleReenroll_WithCurrentCertificate_RenewsTheSubjectWithANewKey) {
  pki::Certificate current = Enroll();
  auto new_key = TestKey("P-384");
  Response response = Est("simplereenroll", Csr(For(kDevice, new_key.get())), "", &current);
  ASSERT_EQ(response.status, 200) << response.body;
  pki::Certificate renewed = FromPkcs7(response.body);
  EXPECT_EQ(
      X509_NAME_cmp(X509_get_subject_name(renewed.get()), X509_get_subject_name(current.get())), 0);
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(renewed.get()), new_key.get()), 1);
  EXPECT_NE(renewed.SerialHex(), current.SerialHex());
  EXPECT_EQ(Inventory().size(), 2u);
  registry::AuditRecord audit = LastAudit();
  EXPECT_EQ(audit.action, registry::kAuditCertificateRenew);
  EXPECT_EQ(audit.actor, std::string("device:") + kDevice);
  EXPECT_EQ(audit.object, renewed.SerialHex());
  // The client certificate was observed: the issued record stays issued.
  EXPECT_TRUE(Inventory(registry::CertificateSource::kObserved).empty());
}

TEST_F(EstApiTest, SimpleReenroll_Rejects_NoClientCertificate_EvenWithASasToken) {
  size_t audit = AuditCount();
  ExpectRefused(Est("simplereenroll", Csr(For(kDevice)), Sas()), 401,
                "simplereenroll needs the certificate being renewed as the TLS client certificate",
                0, audit);
}

TEST_F(EstApiTest, SimpleReenroll_Rejects_RevokedCertificate) {
  pki::Certificate current = Enroll();
  Revoke(current);
  size_t audit = AuditCount();
  ExpectRefused(Est("simplereenroll", Csr(For(kDevice)), "", &current), 403, "was revoked at", 1,
                audit);
  // The revoked certificate cannot stand in for the SAS token in simpleenroll either.
  ExpectRefused(Est("simpleenroll", Csr(For(kDevice)), "", &current), 403, "(keyCompromise)", 1,
                audit);
}

TEST_F(EstApiTest, SimpleReenroll_Rejects_ExpiredCertificate) {
  pki::Certificate current = Enroll();
  clock_.Advance(std::chrono::hours(24 * 366));
  size_t audit = AuditCount();
  ExpectRefused(Est("simplereenroll", Csr(For(kDevice)), "", &current), 401,
                "expired at " + FormatUtc(current.NotAfter()), 1, audit);
}

TEST_F(EstApiTest, SimpleReenroll_Rejects_ForeignCertificate) {
  auto foreign_ca = ca::testing::MakeTestCa(clock_, random_);
  ASSERT_TRUE(foreign_ca.has_value());
  auto key = TestKey("P-256");
  auto foreign =
      (*foreign_ca)
          ->Issue(ca::kDeviceClientProfile, {.common_name = kDevice, .public_key = key.get()});
  ASSERT_TRUE(foreign.has_value());
  size_t audit = AuditCount();
  ExpectRefused(Est("simplereenroll", Csr(For(kDevice)), "", &*foreign), 401,
                "was not issued by devid's CA for client authentication", 0, audit);
  // ... but it was observed (discovery).
  auto observed = Inventory(registry::CertificateSource::kObserved);
  ASSERT_EQ(observed.size(), 1u);
  EXPECT_EQ(observed[0].sha256_thumbprint, foreign->Sha256Thumbprint());
}

TEST_F(EstApiTest, SimpleReenroll_Rejects_CertificateDevidDidNotRecord) {
  auto key = TestKey("P-256");
  auto unrecorded = authority_->Issue(ca::kDeviceClientProfile,
                                      {.common_name = kDevice, .public_key = key.get()});
  ASSERT_TRUE(unrecorded.has_value());
  size_t audit = AuditCount();
  ExpectRefused(Est("simplereenroll", Csr(For(kDevice)), "", &*unrecorded), 401,
                "is not in devid's certificate inventory", 0, audit);
}

TEST_F(EstApiTest, SimpleReenroll_Rejects_ServerCertificate) {
  auto key = TestKey("P-256");
  auto server = authority_->Issue(
      ca::kServerProfile, {.common_name = kDevice, .dns_names = {"x"}, .public_key = key.get()});
  ASSERT_TRUE(server.has_value());
  ASSERT_TRUE(registry_->RecordCertificate(
      ca::InventoryRecord(*server, registry::CertificateSource::kIssued, "", "server"),
      registry::kAuditCertificateIssue, {"test"}));
  size_t audit = AuditCount();
  ExpectRefused(Est("simplereenroll", Csr(For(kDevice)), "", &*server), 401,
                "unsuitable certificate purpose", 1, audit);
}

TEST_F(EstApiTest, SimpleReenroll_Rejects_DisabledEnrollment) {
  pki::Certificate current = Enroll();
  PutSymmetricEnrollment(kDevice, /*enabled=*/false);
  size_t audit = AuditCount();
  ExpectRefused(Est("simplereenroll", Csr(For(kDevice)), "", &current), 403,
                "the enrollment of est-device-1 is disabled", 1, audit);
}

TEST_F(EstApiTest, SimpleReenroll_Rejects_DisabledGroupTheDeviceRegisteredThrough) {
  PutSymmetricGroup("grp1");
  const std::string device = "est-group-device";
  registry::Registration registration;
  registration.registration_id = device;
  registration.enrollment_group_id = "grp1";
  registration.status = "assigned";
  ASSERT_TRUE(registry_->SaveRegistration(registration, {"test"}));
  std::string token = DeviceToken(*pki::DeriveSymmetricKey(kGroupKey, device), device);
  Response enrolled = Est("simpleenroll", Csr(For(device)), token);
  ASSERT_EQ(enrolled.status, 200) << enrolled.body;
  pki::Certificate current = FromPkcs7(enrolled.body);
  ASSERT_EQ(Est("simplereenroll", Csr(For(device)), "", &current).status, 200);
  PutSymmetricGroup("grp1", /*enabled=*/false);
  size_t audit = AuditCount();
  ExpectRefused(Est("simplereenroll", Csr(For(device)), "", &current), 403,
                "the enrollment group grp1 of est-group-device is disabled", 2, audit);
}

TEST_F(EstApiTest, SimpleReenroll_Rejects_ChangedSubject) {
  pki::Certificate current = Enroll();
  size_t audit = AuditCount();
  ExpectRefused(Est("simplereenroll", Csr(For("est-device-2")), "", &current), 403,
                "is not the registration ID", 1, audit);
}

TEST_F(EstApiTest, Enroll_FailsWithoutACertificate_WhenTheInventoryCannotRecord) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "devid.db").c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  int rc = sqlite3_exec(db,
                        "CREATE TRIGGER refuse_certificates BEFORE INSERT ON certificates "
                        "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
                        nullptr, nullptr, &error);
  EXPECT_EQ(rc, SQLITE_OK) << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
  size_t audit = AuditCount();
  Response response = Est("simpleenroll", Csr(For(kDevice)), Sas());
  EXPECT_EQ(response.status, 500) << response.body;
  EXPECT_THAT(response.body, HasSubstr("internal error"));
  EXPECT_THAT(response.body, ::testing::Not(HasSubstr("BEGIN")));
  EXPECT_EQ(AuditCount(), audit);
  response = Est("serverkeygen", Csr(For(kDevice)), Sas());
  EXPECT_EQ(response.status, 500);
  EXPECT_THAT(response.body, ::testing::Not(HasSubstr("pkcs8")));
}

// Multipart splits a multipart/mixed body into (headers, content) parts.
std::vector<std::pair<std::string, std::string>> Multipart(const std::string& body,
                                                           const std::string& boundary) {
  std::vector<std::pair<std::string, std::string>> parts;
  std::string delimiter = "--" + boundary;
  size_t at = body.find(delimiter);
  while (at != std::string::npos) {
    size_t start = at + delimiter.size();
    if (body.compare(start, 2, "--") == 0) break;
    start += 2;  // CRLF
    size_t next = body.find("\r\n" + delimiter, start);
    if (next == std::string::npos) break;
    std::string part = body.substr(start, next - start);
    size_t blank = part.find("\r\n\r\n");
    parts.emplace_back(part.substr(0, blank), part.substr(blank + 4));
    at = next + 2;
  }
  return parts;
}

TEST_F(EstApiTest, ServerKeyGen_ReturnsAPkcs8KeyAndItsCertificate) {
  // RFC 7030 §4.4.1: the request's key and signature are ignored, so a placeholder key will do.
  auto placeholder = TestKey("RSA-1024");
  Response response = Est("serverkeygen", Csr(For(kDevice, placeholder.get())), Sas());
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_TRUE(response.sensitive_body);
  std::string content_type;
  for (const auto& [name, value] : response.headers) {
    if (name == "Content-Type") content_type = value;
  }
  ASSERT_THAT(content_type, StartsWith("multipart/mixed; boundary="));
  auto parts = Multipart(response.body, content_type.substr(content_type.find('=') + 1));
  ASSERT_EQ(parts.size(), 2u) << response.body.size();
  EXPECT_THAT(parts[0].first, HasSubstr("Content-Type: application/pkcs8"));
  EXPECT_THAT(parts[1].first,
              HasSubstr("Content-Type: application/pkcs7-mime; smime-type=certs-only"));

  std::string pkcs8 = Unbase64(parts[0].second);
  const auto* p = reinterpret_cast<const unsigned char*>(pkcs8.data());
  PKCS8_PRIV_KEY_INFO* info = d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(pkcs8.size()));
  ASSERT_NE(info, nullptr);
  ossl::UniquePtr<EVP_PKEY> key(EVP_PKCS82PKEY(info));
  PKCS8_PRIV_KEY_INFO_free(info);
  ASSERT_NE(key, nullptr);
  EXPECT_TRUE(EVP_PKEY_is_a(key.get(), "EC"));
  EXPECT_EQ(EVP_PKEY_get_bits(key.get()), 256);

  pki::Certificate certificate = FromPkcs7(parts[1].second);
  EXPECT_EQ(certificate.SubjectCommonName(), kDevice);
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(certificate.get()), key.get()), 1);
  auto issued = Inventory();
  ASSERT_EQ(issued.size(), 1u);
  EXPECT_EQ(issued[0].sha256_thumbprint, certificate.Sha256Thumbprint());
  EXPECT_EQ(LastAudit().action, registry::kAuditCertificateIssue);
}

TEST_F(EstApiTest, ServerKeyGen_Rejects_MissingCredentialsAndForeignSubjects) {
  size_t audit = AuditCount();
  ExpectRefused(Est("serverkeygen", Csr(For(kDevice))), 401, "SAS token", 0, audit);
  ExpectRefused(Est("serverkeygen", Csr(For("est-device-2")), Sas()), 403,
                "is not the registration ID", 0, audit);
  TestCsr password = For(kDevice);
  password.challenge_password = "x";
  ExpectRefused(Est("serverkeygen", Csr(password), Sas()), 400, "challengePassword", 0, audit);
}

TEST_F(EstApiTest, CsrAttrs_AsksForAnEcdsaP256Key) {
  Response response = Est("csrattrs", "", "", nullptr, "GET");
  ASSERT_EQ(response.status, 200);
  std::string der = Unbase64(response.body);
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ASN1_SEQUENCE_ANY* attrs = d2i_ASN1_SEQUENCE_ANY(nullptr, &p, static_cast<long>(der.size()));
  ASSERT_NE(attrs, nullptr);
  EXPECT_EQ(sk_ASN1_TYPE_num(attrs), 2);
  const ASN1_TYPE* signature = sk_ASN1_TYPE_value(attrs, 0);
  EXPECT_EQ(signature->type, V_ASN1_OBJECT);
  if (signature->type == V_ASN1_OBJECT) {
    EXPECT_EQ(OBJ_obj2nid(signature->value.object), NID_ecdsa_with_SHA256);
  }
  EXPECT_EQ(sk_ASN1_TYPE_value(attrs, 1)->type, V_ASN1_SEQUENCE);
  sk_ASN1_TYPE_pop_free(attrs, ASN1_TYPE_free);
}

TEST_F(EstApiTest, UnknownOperationsAre404) {
  EXPECT_EQ(Est("fullcmc", Csr(For(kDevice)), Sas()).status, 404);
  EXPECT_EQ(Est("cacerts", "", "", nullptr, "GET").status, 200);
}

}  // namespace
}  // namespace devid::api
