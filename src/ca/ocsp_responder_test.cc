#include "ca/ocsp_responder.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>

#include "ca/testing/inventory_fixture.h"
#include "ossl/revocation_handles.h"
#include "pki/crl_reason.h"

namespace devid::ca {
namespace {

using std::chrono::minutes;

class OcspResponderTest : public testing::InventoryFixture {
 protected:
  void SetUp() override {
    InventoryFixture::SetUp();
    auto responder = OcspResponder::Create(*authority_, Signers(), *registry_, clock_);
    ASSERT_TRUE(responder) << responder.error().message();
    responder_ = std::move(*responder);
  }

  // NewSigner issues a delegated signer for issuer at the clock's time (ocsp-signer: 90 days).
  Result<OcspSigner> NewSigner(const IssuingCa& issuer) {
    auto key = keys::GenerateSoftwareKey(keys::KeyAlgorithm::kEcdsaP256);
    if (!key) return std::unexpected(key.error());
    DEVID_ASSIGN_OR_RETURN(
        pki::Certificate certificate,
        authority_->IssueWith(issuer, kOcspSignerProfile,
                              {.common_name = "OCSP signer", .public_key = key->get()}));
    DEVID_ASSIGN_OR_RETURN(std::unique_ptr<keys::Key> signer_key,
                           keys::SoftwareKey(std::move(*key), "test:ocsp"));
    return OcspSigner{&issuer, std::move(certificate), std::move(signer_key)};
  }

  std::vector<OcspSigner> Signers() {
    auto signer = NewSigner(Issuer());
    EXPECT_TRUE(signer) << signer.error().message();
    std::vector<OcspSigner> signers;
    if (signer) signers.push_back(std::move(*signer));
    return signers;
  }

  // SignerSerial returns the serial of the signer certificate a successful answer carries.
  static std::string SignerSerial(const OcspAnswer& answer) {
    const auto* p = reinterpret_cast<const unsigned char*>(answer.der.data());
    ossl::UniquePtr<OCSP_RESPONSE> response(
        d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(answer.der.size())));
    if (!response) return "";
    ossl::UniquePtr<OCSP_BASICRESP> basic(OCSP_response_get1_basic(response.get()));
    if (!basic || sk_X509_num(OCSP_resp_get0_certs(basic.get())) != 1) return "";
    X509* signer = sk_X509_value(OCSP_resp_get0_certs(basic.get()), 0);
    X509_up_ref(signer);
    return pki::Certificate::Adopt(ossl::UniquePtr<X509>(signer)).SerialHex();
  }

  // Request encodes an OCSPRequest for certificate (issued by issuer) with digest's CertID and,
  // when nonce_length > 0, a nonce of that many octets.
  static std::string Request(const pki::Certificate& certificate, const pki::Certificate& issuer,
                             const EVP_MD* digest = EVP_sha1(), int nonce_length = 0) {
    ossl::UniquePtr<OCSP_REQUEST> request(OCSP_REQUEST_new());
    OCSP_CERTID* id = OCSP_cert_to_id(digest, certificate.get(), issuer.get());
    EXPECT_NE(OCSP_request_add0_id(request.get(), id), nullptr);
    if (nonce_length > 0) {
      EXPECT_EQ(OCSP_request_add1_nonce(request.get(), nullptr, nonce_length), 1);
    }
    unsigned char* der = nullptr;
    int length = i2d_OCSP_REQUEST(request.get(), &der);
    std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(length));
    OPENSSL_free(der);
    return out;
  }

  struct Parsed {
    int response_status = -1;
    int cert_status = -1;
    int reason = -1;
    bool signature_ok = false;
    bool nonce_ok = false;
    time_t revoked_at = 0;
  };

  // Parse checks answer with OpenSSL as a relying party would: the signature and the delegated
  // signer's chain to the test root (OCSP_basic_verify), then the status of certificate.
  Parsed Parse(const OcspAnswer& answer, const pki::Certificate& certificate,
               const EVP_MD* digest = EVP_sha1(), const std::string& request_der = "") {
    Parsed parsed;
    const auto* p = reinterpret_cast<const unsigned char*>(answer.der.data());
    ossl::UniquePtr<OCSP_RESPONSE> response(
        d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(answer.der.size())));
    EXPECT_TRUE(response);
    if (!response) return parsed;
    parsed.response_status = OCSP_response_status(response.get());
    EXPECT_EQ(parsed.response_status, static_cast<int>(answer.status));
    if (parsed.response_status != OCSP_RESPONSE_STATUS_SUCCESSFUL) return parsed;
    ossl::UniquePtr<OCSP_BASICRESP> basic(OCSP_response_get1_basic(response.get()));
    EXPECT_TRUE(basic);
    ossl::UniquePtr<X509_STORE> store(X509_STORE_new());
    X509_STORE_add_cert(store.get(), authority_->roots().front().get());
    // The chain is checked at the fake clock's time, as a relying party would at that time.
    X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(store.get()),
                               std::chrono::system_clock::to_time_t(clock_.Now()));
    STACK_OF(X509)* untrusted = sk_X509_new_null();
    sk_X509_push(untrusted, Issuer().certificate.get());
    parsed.signature_ok = OCSP_basic_verify(basic.get(), untrusted, store.get(), 0) == 1;
    sk_X509_free(untrusted);
    ERR_clear_error();
    if (!request_der.empty()) {
      const auto* q = reinterpret_cast<const unsigned char*>(request_der.data());
      ossl::UniquePtr<OCSP_REQUEST> request(
          d2i_OCSP_REQUEST(nullptr, &q, static_cast<long>(request_der.size())));
      parsed.nonce_ok = OCSP_check_nonce(request.get(), basic.get()) == 1;
    }
    ossl::UniquePtr<OCSP_CERTID> id(
        OCSP_cert_to_id(digest, certificate.get(), Issuer().certificate.get()));
    ASN1_GENERALIZEDTIME *revoked = nullptr, *this_update = nullptr, *next_update = nullptr;
    int status = -1, reason = -1;
    if (OCSP_resp_find_status(basic.get(), id.get(), &status, &reason, &revoked, &this_update,
                              &next_update) == 1) {
      parsed.cert_status = status;
      parsed.reason = reason;
      // The fake clock's time, not the machine's: compare rather than OCSP_check_validity.
      EXPECT_EQ(ASN1_TIME_cmp_time_t(this_update,
                                     std::chrono::system_clock::to_time_t(answer.produced_at)),
                0);
      EXPECT_EQ(ASN1_TIME_cmp_time_t(next_update,
                                     std::chrono::system_clock::to_time_t(answer.next_update)),
                0);
      if (revoked != nullptr) {
        struct tm tm {};
        ASN1_TIME_to_tm(revoked, &tm);
        parsed.revoked_at = timegm(&tm);
      }
    }
    ERR_clear_error();
    return parsed;
  }

  std::unique_ptr<OcspResponder> responder_;
};

TEST_F(OcspResponderTest, Good_ForAnIssuedUnrevokedCertificate_SignedByTheDelegatedSigner) {
  auto device = IssueDevice("ocsp-good");
  OcspAnswer answer = responder_->Respond(Request(device, Issuer().certificate));
  ASSERT_EQ(answer.status, OcspResponseStatus::kSuccessful) << answer.error;
  Parsed parsed = Parse(answer, device);
  EXPECT_TRUE(parsed.signature_ok);
  EXPECT_EQ(parsed.cert_status, V_OCSP_CERTSTATUS_GOOD);
  EXPECT_EQ(answer.produced_at, clock_.Now());
  EXPECT_EQ(answer.next_update, clock_.Now() + std::chrono::hours(1));
  EXPECT_FALSE(answer.etag.empty());
}

TEST_F(OcspResponderTest, Good_ForASha256CertId) {
  auto device = IssueDevice("ocsp-sha256");
  OcspAnswer answer = responder_->Respond(Request(device, Issuer().certificate, EVP_sha256()));
  ASSERT_EQ(answer.status, OcspResponseStatus::kSuccessful) << answer.error;
  Parsed parsed = Parse(answer, device, EVP_sha256());
  EXPECT_TRUE(parsed.signature_ok);
  EXPECT_EQ(parsed.cert_status, V_OCSP_CERTSTATUS_GOOD);
}

TEST_F(OcspResponderTest, Revoked_WithTimeAndReason) {
  auto device = IssueDevice("ocsp-revoked");
  clock_.Advance(minutes(5));
  Revoke(device, pki::kKeyCompromise);
  OcspAnswer answer = responder_->Respond(Request(device, Issuer().certificate));
  ASSERT_EQ(answer.status, OcspResponseStatus::kSuccessful) << answer.error;
  Parsed parsed = Parse(answer, device);
  EXPECT_TRUE(parsed.signature_ok);
  EXPECT_EQ(parsed.cert_status, V_OCSP_CERTSTATUS_REVOKED);
  EXPECT_EQ(parsed.reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
  EXPECT_EQ(parsed.revoked_at, std::chrono::system_clock::to_time_t(clock_.Now()));
}

TEST_F(OcspResponderTest, Unknown_ForOurIssuerButASerialNotInTheInventory) {
  auto device = IssueDevice("ocsp-unknown", /*record=*/false);
  OcspAnswer answer = responder_->Respond(Request(device, Issuer().certificate));
  ASSERT_EQ(answer.status, OcspResponseStatus::kSuccessful) << answer.error;
  Parsed parsed = Parse(answer, device);
  EXPECT_TRUE(parsed.signature_ok);
  EXPECT_EQ(parsed.cert_status, V_OCSP_CERTSTATUS_UNKNOWN);
}

TEST_F(OcspResponderTest, Rejects_ForeignIssuer_WithUnauthorized) {
  auto other = testing::MakeTestCa(clock_, random_);
  ASSERT_TRUE(other);
  auto key = keys::GenerateSoftwareKey(keys::KeyAlgorithm::kEcdsaP256);
  auto foreign =
      (*other)->Issue(kDeviceClientProfile, {.common_name = "x", .public_key = key->get()});
  ASSERT_TRUE(foreign);
  size_t audit = registry_->ListAudit(0, 1000)->size();
  OcspAnswer answer =
      responder_->Respond(Request(*foreign, (*other)->issuers().front().certificate));
  EXPECT_EQ(answer.status, OcspResponseStatus::kUnauthorized);
  EXPECT_EQ(answer.der, OcspErrorResponse(OcspResponseStatus::kUnauthorized));
  EXPECT_EQ(Parse(answer, *foreign).response_status, OCSP_RESPONSE_STATUS_UNAUTHORIZED);
  EXPECT_NE(answer.error.find("not ours"), std::string::npos);
  EXPECT_EQ(registry_->ListAudit(0, 1000)->size(), audit);
}

TEST_F(OcspResponderTest, Rejects_GarbageAndTrailingBytes_WithMalformedRequest) {
  auto device = IssueDevice("ocsp-malformed");
  for (std::string body :
       {std::string("not ocsp"), std::string(), Request(device, Issuer().certificate) + "x"}) {
    OcspAnswer answer = responder_->Respond(body);
    EXPECT_EQ(answer.status, OcspResponseStatus::kMalformedRequest);
    EXPECT_EQ(Parse(answer, device).response_status, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    EXPECT_NE(answer.error.find("not a DER OCSPRequest"), std::string::npos);
  }
}

TEST_F(OcspResponderTest, Nonce_IsEchoed) {
  auto device = IssueDevice("ocsp-nonce");
  std::string request = Request(device, Issuer().certificate, EVP_sha1(), 32);
  OcspAnswer answer = responder_->Respond(request);
  ASSERT_EQ(answer.status, OcspResponseStatus::kSuccessful) << answer.error;
  Parsed parsed = Parse(answer, device, EVP_sha1(), request);
  EXPECT_TRUE(parsed.signature_ok);
  EXPECT_TRUE(parsed.nonce_ok);
  EXPECT_EQ(parsed.cert_status, V_OCSP_CERTSTATUS_GOOD);
  // Each nonce gets its own response: a second request is signed afresh.
  std::string second = Request(device, Issuer().certificate, EVP_sha1(), 16);
  OcspAnswer other = responder_->Respond(second);
  EXPECT_TRUE(Parse(other, device, EVP_sha1(), second).nonce_ok);
  EXPECT_NE(other.der, answer.der);
}

TEST_F(OcspResponderTest, Rejects_NonceLongerThan32Octets_WithMalformedRequest) {
  auto device = IssueDevice("ocsp-long-nonce");
  OcspAnswer answer = responder_->Respond(Request(device, Issuer().certificate, EVP_sha1(), 33));
  EXPECT_EQ(answer.status, OcspResponseStatus::kMalformedRequest);
  EXPECT_NE(answer.error.find("33 octets"), std::string::npos);
}

TEST_F(OcspResponderTest, Cache_ServesTheSameSignedResponse_UntilARevocation) {
  auto device = IssueDevice("ocsp-cache");
  auto bystander = IssueDevice("ocsp-bystander");
  std::string request = Request(device, Issuer().certificate);
  OcspAnswer first = responder_->Respond(request);
  ASSERT_EQ(first.status, OcspResponseStatus::kSuccessful);
  clock_.Advance(minutes(10));
  OcspAnswer cached = responder_->Respond(request);
  EXPECT_EQ(cached.der, first.der) << "ECDSA signatures differ: equal bytes mean no re-signing";

  // Another certificate's revocation bumps the version but leaves this status: still cached.
  Revoke(bystander, pki::kUnspecified);
  EXPECT_EQ(responder_->Respond(request).der, first.der);

  Revoke(device, pki::kCessationOfOperation);
  OcspAnswer revoked = responder_->Respond(request);
  ASSERT_EQ(revoked.status, OcspResponseStatus::kSuccessful);
  EXPECT_NE(revoked.der, first.der);
  EXPECT_EQ(Parse(revoked, device).cert_status, V_OCSP_CERTSTATUS_REVOKED);
  EXPECT_EQ(Parse(revoked, device).reason, OCSP_REVOKED_STATUS_CESSATIONOFOPERATION);
}

TEST_F(OcspResponderTest, Cache_RefreshesAtHalfTheValidity) {
  auto device = IssueDevice("ocsp-refresh");
  std::string request = Request(device, Issuer().certificate);
  OcspAnswer first = responder_->Respond(request);
  clock_.Advance(minutes(29));
  EXPECT_EQ(responder_->Respond(request).der, first.der);
  clock_.Advance(minutes(2));
  OcspAnswer fresh = responder_->Respond(request);
  EXPECT_NE(fresh.der, first.der);
  EXPECT_EQ(fresh.produced_at, clock_.Now());
  EXPECT_EQ(Parse(fresh, device).cert_status, V_OCSP_CERTSTATUS_GOOD);
}

TEST_F(OcspResponderTest, RespondCached_ServesWhatRespondCached_WhileTheVersionReadIsFresh) {
  auto device = IssueDevice("ocsp-now");
  std::string request = Request(device, Issuer().certificate);
  EXPECT_FALSE(responder_->RespondCached(request)) << "nothing cached yet";
  OcspAnswer first = responder_->Respond(request);
  ASSERT_EQ(first.status, OcspResponseStatus::kSuccessful) << first.error;
  auto now = responder_->RespondCached(request);
  ASSERT_TRUE(now);
  EXPECT_EQ(now->der, first.der);
  EXPECT_EQ(now->etag, first.etag);
  EXPECT_EQ(now->next_update, first.next_update);

  // Past version_max_age without a read of the store, only Respond answers.
  clock_.Advance(OcspOptions{}.version_max_age + std::chrono::milliseconds(1));
  EXPECT_FALSE(responder_->RespondCached(request));
  EXPECT_EQ(responder_->Respond(request).der, first.der);
  EXPECT_TRUE(responder_->RespondCached(request));

  // Other requests are never answered from the cache alone: another CertID hash, a nonce,
  // garbage.
  EXPECT_FALSE(responder_->RespondCached(Request(device, Issuer().certificate, EVP_sha256())));
  std::string with_nonce = Request(device, Issuer().certificate, EVP_sha1(), 16);
  EXPECT_EQ(responder_->Respond(with_nonce).status, OcspResponseStatus::kSuccessful);
  EXPECT_FALSE(responder_->RespondCached(with_nonce));
  EXPECT_FALSE(responder_->RespondCached("not ocsp"));
}

TEST_F(OcspResponderTest, RespondCached_Declines_AfterARevocationIsRead_ThenServesRevoked) {
  auto device = IssueDevice("ocsp-now-revoked");
  std::string request = Request(device, Issuer().certificate);
  ASSERT_EQ(responder_->Respond(request).status, OcspResponseStatus::kSuccessful);
  Revoke(device, pki::kKeyCompromise);
  clock_.Advance(OcspOptions{}.version_max_age + std::chrono::milliseconds(1));
  EXPECT_FALSE(responder_->RespondCached(request));
  OcspAnswer revoked = responder_->Respond(request);
  EXPECT_EQ(Parse(revoked, device).cert_status, V_OCSP_CERTSTATUS_REVOKED);
  auto now = responder_->RespondCached(request);
  ASSERT_TRUE(now);
  EXPECT_EQ(now->der, revoked.der);
}

TEST_F(OcspResponderTest, RespondCached_Declines_AtHalfTheValidity) {
  auto device = IssueDevice("ocsp-now-refresh");
  std::string request = Request(device, Issuer().certificate);
  ASSERT_EQ(responder_->Respond(request).status, OcspResponseStatus::kSuccessful);
  clock_.Advance(minutes(31));
  // A read of the version for another request keeps it fresh; the response itself is due.
  auto other = IssueDevice("ocsp-now-other");
  ASSERT_EQ(responder_->Respond(Request(other, Issuer().certificate)).status,
            OcspResponseStatus::kSuccessful);
  EXPECT_FALSE(responder_->RespondCached(request));
}

TEST_F(OcspResponderTest, Renews_TheSignerWhenATwoThirdsOfItsLifeHavePassed_WithoutARestart) {
  int renewals = 0;
  auto responder = OcspResponder::Create(
      *authority_, Signers(), *registry_, clock_, {},
      [&](const IssuingCa& issuer) -> Result<OcspSigner> {
        ++renewals;
        return NewSigner(issuer);
      });
  ASSERT_TRUE(responder) << responder.error().message();
  auto device = IssueDevice("ocsp-renew");
  std::string request = Request(device, Issuer().certificate);
  OcspAnswer first = (*responder)->Respond(request);
  ASSERT_EQ(first.status, OcspResponseStatus::kSuccessful) << first.error;
  std::string old_signer = SignerSerial(first);
  ASSERT_FALSE(old_signer.empty());

  clock_.Advance(std::chrono::hours(24 * 59));  // 31 of 90 days left: not yet due
  EXPECT_EQ(SignerSerial((*responder)->Respond(request)), old_signer);
  EXPECT_EQ(renewals, 0);

  clock_.Advance(std::chrono::hours(24 * 2));  // 29 days left: due
  OcspAnswer renewed = (*responder)->Respond(request);
  ASSERT_EQ(renewed.status, OcspResponseStatus::kSuccessful) << renewed.error;
  EXPECT_EQ(renewals, 1);
  EXPECT_NE(SignerSerial(renewed), old_signer);
  Parsed parsed = Parse(renewed, device);
  EXPECT_TRUE(parsed.signature_ok) << "signed by the new signer, which chains to the root";
  EXPECT_EQ(parsed.cert_status, V_OCSP_CERTSTATUS_GOOD);

  // The new signer keeps signing: one renewal, not one per response.
  auto other = IssueDevice("ocsp-renew-other");
  OcspAnswer next = (*responder)->Respond(Request(other, Issuer().certificate));
  EXPECT_EQ(SignerSerial(next), SignerSerial(renewed));
  EXPECT_EQ(renewals, 1);
}

TEST_F(OcspResponderTest, RenewalFailure_KeepsTheValidSigner_AndRetriesLater) {
  int renewals = 0;
  bool fail = true;
  auto responder = OcspResponder::Create(
      *authority_, Signers(), *registry_, clock_, {.renewal_retry = std::chrono::seconds(60)},
      [&](const IssuingCa& issuer) -> Result<OcspSigner> {
        ++renewals;
        if (fail) return std::unexpected(Unavailable("the key store is down"));
        return NewSigner(issuer);
      });
  ASSERT_TRUE(responder) << responder.error().message();
  OcspAnswer first = (*responder)->Respond(Request(IssueDevice("ocsp-r1"), Issuer().certificate));
  std::string old_signer = SignerSerial(first);

  clock_.Advance(std::chrono::hours(24 * 61));
  OcspAnswer kept = (*responder)->Respond(Request(IssueDevice("ocsp-r2"), Issuer().certificate));
  ASSERT_EQ(kept.status, OcspResponseStatus::kSuccessful) << kept.error;
  EXPECT_EQ(SignerSerial(kept), old_signer);
  EXPECT_EQ(renewals, 1);
  (*responder)->Respond(Request(IssueDevice("ocsp-r3"), Issuer().certificate));
  EXPECT_EQ(renewals, 1) << "no new attempt before renewal_retry";

  clock_.Advance(std::chrono::seconds(61));
  fail = false;
  OcspAnswer renewed =
      (*responder)->Respond(Request(IssueDevice("ocsp-r4"), Issuer().certificate));
  EXPECT_EQ(renewals, 2);
  EXPECT_NE(SignerSerial(renewed), old_signer);
}

TEST_F(OcspResponderTest, ExpiredSigner_WhoseRenewalFails_AnswersTryLater) {
  auto responder = OcspResponder::Create(
      *authority_, Signers(), *registry_, clock_, {},
      [&](const IssuingCa&) -> Result<OcspSigner> {
        return std::unexpected(Unavailable("the key store is down"));
      });
  ASSERT_TRUE(responder) << responder.error().message();
  auto device = IssueDevice("ocsp-expired");
  clock_.Advance(std::chrono::hours(24 * 91));
  size_t audit = registry_->ListAudit(0, 1000)->size();
  OcspAnswer answer = (*responder)->Respond(Request(device, Issuer().certificate));
  EXPECT_EQ(answer.status, OcspResponseStatus::kTryLater);
  EXPECT_EQ(answer.der, OcspErrorResponse(OcspResponseStatus::kTryLater));
  EXPECT_NE(answer.error.find("the key store is down"), std::string::npos) << answer.error;
  // Within renewal_retry the next request is refused at once, without another attempt.
  OcspAnswer again = (*responder)->Respond(Request(device, Issuer().certificate));
  EXPECT_EQ(again.status, OcspResponseStatus::kTryLater);
  EXPECT_NE(again.error.find("has expired"), std::string::npos) << again.error;
  EXPECT_EQ(registry_->ListAudit(0, 1000)->size(), audit);
}

TEST_F(OcspResponderTest, SignerNeedsRenewal_InItsLastThird) {
  auto signer = NewSigner(Issuer());
  ASSERT_TRUE(signer);
  const pki::Certificate& certificate = signer->certificate;
  auto lifetime = certificate.NotAfter() - certificate.NotBefore();
  EXPECT_FALSE(OcspSignerNeedsRenewal(certificate, clock_.Now()));
  EXPECT_FALSE(OcspSignerNeedsRenewal(certificate, certificate.NotAfter() - lifetime / 3));
  EXPECT_TRUE(OcspSignerNeedsRenewal(certificate,
                                     certificate.NotAfter() - lifetime / 3 + std::chrono::seconds(1)));
  EXPECT_TRUE(OcspSignerNeedsRenewal(certificate, certificate.NotAfter()));
}

TEST_F(OcspResponderTest, Create_Rejects_SignerNotIssuedByItsCa) {
  auto other = testing::MakeTestCa(clock_, random_);
  ASSERT_TRUE(other);
  auto key = keys::GenerateSoftwareKey(keys::KeyAlgorithm::kEcdsaP256);
  auto certificate = (*other)->Issue(kOcspSignerProfile,
                                     {.common_name = "foreign signer", .public_key = key->get()});
  ASSERT_TRUE(certificate) << certificate.error().message();
  auto signer_key = keys::SoftwareKey(std::move(*key), "test:foreign");
  std::vector<OcspSigner> signers;
  signers.push_back({&Issuer(), std::move(*certificate), std::move(*signer_key)});
  auto responder = OcspResponder::Create(*authority_, std::move(signers), *registry_, clock_);
  ASSERT_FALSE(responder);
  EXPECT_EQ(responder.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace devid::ca
