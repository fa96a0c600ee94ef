#include "ca/crl.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "base/hex.h"
#include "ca/crl_publisher.h"
#include "ca/testing/inventory_fixture.h"
#include "ossl/revocation_handles.h"
#include "pki/crl_reason.h"

namespace devid::ca {
namespace {

using std::chrono::hours;

ossl::UniquePtr<X509_CRL> ParseCrl(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ossl::UniquePtr<X509_CRL> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  EXPECT_TRUE(crl);
  EXPECT_EQ(p, reinterpret_cast<const unsigned char*>(der.data()) + der.size());
  return crl;
}

// ReasonOf returns the entry's reasonCode, or -1 when it has none.
int ReasonOf(X509_REVOKED* entry) {
  int critical = 0;
  auto* reason = static_cast<ASN1_ENUMERATED*>(
      X509_REVOKED_get_ext_d2i(entry, NID_crl_reason, &critical, nullptr));
  if (reason == nullptr) return -1;
  int value = static_cast<int>(ASN1_ENUMERATED_get(reason));
  ASN1_ENUMERATED_free(reason);
  return value;
}

uint64_t NumberOf(X509_CRL* crl) {
  auto* number =
      static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl, NID_crl_number, nullptr, nullptr));
  EXPECT_NE(number, nullptr);
  uint64_t value = 0;
  if (number != nullptr) ASN1_INTEGER_get_uint64(&value, number);
  ASN1_INTEGER_free(number);
  return value;
}

// VerifyWithCrl runs OpenSSL's path validation with CRL checking of the leaf.
int VerifyWithCrl(const Authority& authority, const pki::Certificate& leaf, X509_CRL* crl,
                  std::chrono::system_clock::time_point at) {
  ossl::UniquePtr<X509_STORE> store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), authority.roots().front().get());
  X509_STORE_add_cert(store.get(), authority.issuers().front().certificate.get());
  X509_STORE_add_crl(store.get(), crl);
  ossl::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), nullptr);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_X509_STRICT);
  X509_VERIFY_PARAM_set_time(param, std::chrono::system_clock::to_time_t(at));
  int ok = X509_verify_cert(ctx.get());
  int error = X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();
  return ok == 1 ? X509_V_OK : error;
}

class CrlTest : public testing::InventoryFixture {};

TEST_F(CrlTest, BuildCrl_SignedV2WithEntriesReasonsNumberAndAki) {
  auto revoked = IssueDevice("crl-a", false);
  auto other = IssueDevice("crl-b", false);
  CrlContent content{
      .this_update = clock_.Now(),
      .next_update = clock_.Now() + hours(24),
      .number = 0x1234567890ull,
      .entries = {{revoked.SerialHex(), clock_.Now() - hours(1), pki::kKeyCompromise},
                  {other.SerialHex(), clock_.Now() - hours(2), pki::kUnspecified}}};
  auto der = BuildCrl(Issuer().certificate, *Issuer().key, content);
  ASSERT_TRUE(der) << der.error().message();
  auto crl = ParseCrl(*der);
  ASSERT_TRUE(crl);

  EXPECT_EQ(X509_CRL_get_version(crl.get()), X509_CRL_VERSION_2);
  EXPECT_EQ(X509_CRL_verify(crl.get(), Issuer().key->public_key()), 1);
  EXPECT_EQ(X509_NAME_cmp(X509_CRL_get_issuer(crl.get()),
                          X509_get_subject_name(Issuer().certificate.get())),
            0);
  EXPECT_EQ(ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(crl.get()),
                                 std::chrono::system_clock::to_time_t(content.this_update)),
            0);
  EXPECT_EQ(ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(crl.get()),
                                 std::chrono::system_clock::to_time_t(content.next_update)),
            0);
  EXPECT_EQ(NumberOf(crl.get()), 0x1234567890ull);
  auto* aki = static_cast<AUTHORITY_KEYID*>(
      X509_CRL_get_ext_d2i(crl.get(), NID_authority_key_identifier, nullptr, nullptr));
  ASSERT_NE(aki, nullptr);
  EXPECT_EQ(HexEncode(std::string_view(reinterpret_cast<const char*>(aki->keyid->data),
                                       static_cast<size_t>(aki->keyid->length))),
            KeyIdHex(Issuer().certificate));
  AUTHORITY_KEYID_free(aki);

  STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(crl.get());
  ASSERT_EQ(sk_X509_REVOKED_num(entries), 2);
  X509_REVOKED* first = sk_X509_REVOKED_value(entries, 0);
  EXPECT_EQ(ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(first),
                             X509_get0_serialNumber(revoked.get())),
            0);
  EXPECT_EQ(ReasonOf(first), pki::kKeyCompromise);
  // RFC 5280 §5.3.1: unspecified is written as no reasonCode at all.
  EXPECT_EQ(ReasonOf(sk_X509_REVOKED_value(entries, 1)), -1);

  EXPECT_EQ(VerifyWithCrl(*authority_, revoked, crl.get(), clock_.Now()), X509_V_ERR_CERT_REVOKED);
  auto good = IssueDevice("crl-c", false);
  EXPECT_EQ(VerifyWithCrl(*authority_, good, crl.get(), clock_.Now()), X509_V_OK);
}

TEST_F(CrlTest, BuildCrl_WithoutEntries_LeavesTheListOut) {
  auto der = BuildCrl(Issuer().certificate, *Issuer().key,
                      {.this_update = clock_.Now(), .next_update = clock_.Now() + hours(1)});
  ASSERT_TRUE(der) << der.error().message();
  auto crl = ParseCrl(*der);
  ASSERT_TRUE(crl);
  EXPECT_EQ(X509_CRL_get_REVOKED(crl.get()), nullptr);
  EXPECT_EQ(X509_CRL_verify(crl.get(), Issuer().key->public_key()), 1);
}

TEST_F(CrlTest, BuildCrl_Rejects_NonHexSerial) {
  auto der = BuildCrl(Issuer().certificate, *Issuer().key,
                      {.this_update = clock_.Now(),
                       .next_update = clock_.Now() + hours(1),
                       .entries = {{"XYZ", clock_.Now(), 0}}});
  ASSERT_FALSE(der);
  EXPECT_EQ(der.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(der.error().message().find("XYZ"), std::string::npos);
}

TEST(CrlNumberTest, GrowsWithTimeAndWithVersionWithinOneSecond) {
  auto t = std::chrono::system_clock::from_time_t(1795700000);
  EXPECT_LT(CrlNumber(t, 5), CrlNumber(t, 6));
  EXPECT_LT(CrlNumber(t, 900), CrlNumber(t + std::chrono::seconds(1), 0));
  EXPECT_EQ(CrlNumber(t + std::chrono::milliseconds(300), 7), CrlNumber(t, 7));
}

TEST_F(CrlTest, Publisher_ListsRevokedCertificatesOfThatIssuer_AndCachesUntilARevocation) {
  auto first = IssueDevice("pub-a");
  auto second = IssueDevice("pub-b");
  CrlPublisher publisher(*authority_, *registry_, clock_);
  std::string key_id = KeyIdHex(Issuer().certificate);

  auto empty = publisher.Crl(key_id);
  ASSERT_TRUE(empty) << empty.error().message();
  auto again = publisher.Crl(key_id);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->get(), empty->get()) << "served from the cache, not re-signed";
  EXPECT_EQ(X509_CRL_get_REVOKED(ParseCrl((*empty)->der).get()), nullptr);

  Revoke(first, pki::kSuperseded);
  auto revoked = publisher.Crl(key_id);
  ASSERT_TRUE(revoked) << revoked.error().message();
  EXPECT_NE(revoked->get(), empty->get());
  EXPECT_GT((*revoked)->number, (*empty)->number);
  auto crl = ParseCrl((*revoked)->der);
  ASSERT_EQ(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl.get())), 1);
  EXPECT_EQ(ReasonOf(sk_X509_REVOKED_value(X509_CRL_get_REVOKED(crl.get()), 0)), pki::kSuperseded);
  EXPECT_EQ(NumberOf(crl.get()), (*revoked)->number);
  EXPECT_EQ(VerifyWithCrl(*authority_, first, crl.get(), clock_.Now()), X509_V_ERR_CERT_REVOKED);
  EXPECT_EQ(VerifyWithCrl(*authority_, second, crl.get(), clock_.Now()), X509_V_OK);
}

TEST_F(CrlTest, Publisher_RegeneratesAtHalfLife_WithALargerNumber) {
  IssueDevice("half-a");
  CrlPublisher publisher(*authority_, *registry_, clock_, {.validity = hours(48)});
  std::string key_id = KeyIdHex(Issuer().certificate);
  auto first = publisher.Crl(key_id);
  ASSERT_TRUE(first);
  clock_.Advance(hours(23));
  auto same = publisher.Crl(key_id);
  ASSERT_TRUE(same);
  EXPECT_EQ(same->get(), first->get());
  clock_.Advance(hours(2));
  auto fresh = publisher.Crl(key_id);
  ASSERT_TRUE(fresh);
  EXPECT_NE(fresh->get(), first->get());
  EXPECT_GT((*fresh)->number, (*first)->number);
  EXPECT_EQ((*fresh)->next_update, clock_.Now() + hours(48));
}

TEST_F(CrlTest, Publisher_Rejects_UnknownKeyId) {
  CrlPublisher publisher(*authority_, *registry_, clock_);
  auto crl = publisher.Crl("00ff");
  ASSERT_FALSE(crl);
  EXPECT_EQ(crl.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(crl.error().message().find("00ff"), std::string::npos);
  // The root's key is not held by the authority: it has no CRL here until one is added.
  auto root = publisher.Crl(KeyIdHex(authority_->roots().front()));
  ASSERT_FALSE(root);
  EXPECT_EQ(root.error().code(), ErrorCode::kNotFound);
}

TEST_F(CrlTest, Publisher_ServesACrlSignedElsewhere_AndRefusesOneThatDoesNotParse) {
  CrlPublisher publisher(*authority_, *registry_, clock_);
  const IssuingCa& issuing = authority_->issuers().front();
  CrlContent content{.this_update = clock_.Now(),
                     .next_update = clock_.Now() + std::chrono::hours(24 * 365),
                     .number = 7};
  auto der = BuildCrl(issuing.certificate, *issuing.key, content);
  ASSERT_TRUE(der) << der.error().message();
  std::string root_id = KeyIdHex(authority_->roots().front());
  ASSERT_TRUE(publisher.AddSigned(root_id, *der));
  auto served = publisher.Crl(root_id);
  ASSERT_TRUE(served) << served.error().message();
  EXPECT_EQ((*served)->der, *der);
  EXPECT_EQ((*served)->next_update, content.next_update);
  EXPECT_FALSE((*served)->etag.empty());

  auto bad = publisher.AddSigned("00ff", "not a CRL");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(publisher.Crl("00ff"));
}

}  // namespace
}  // namespace devid::ca
