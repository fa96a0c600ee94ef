#include "ca/csr_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ca/testing/test_csr.h"

namespace devid::ca {
namespace {

using ::testing::HasSubstr;
using testing::MakeTestCsrDer;
using testing::TestCsr;
using testing::TestKey;

Result<std::string> Check(const TestCsr& spec, CsrKeyUse key_use = CsrKeyUse::kCertify) {
  auto csr = pki::Csr::FromDer(MakeTestCsrDer(spec));
  EXPECT_TRUE(csr.has_value()) << csr.error().message();
  return CheckDeviceCsr(*csr, key_use);
}

void ExpectRefused(const TestCsr& spec, const std::string& message,
                   CsrKeyUse key_use = CsrKeyUse::kCertify) {
  auto checked = Check(spec, key_use);
  ASSERT_FALSE(checked.has_value()) << "accepted; wanted: " << message;
  EXPECT_EQ(checked.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(checked.error().message(), HasSubstr(message));
}

TEST(CsrPolicyTest, Accepts_SupportedKeys_AndReturnsTheCn) {
  for (const char* kind : {"P-256", "P-384", "RSA-2048", "RSA-3072", "ED25519"}) {
    auto key = TestKey(kind);
    auto checked = Check({.subject = {{"CN", "device-7"}}, .key = key.get()});
    ASSERT_TRUE(checked.has_value()) << kind << ": " << checked.error().message();
    EXPECT_EQ(*checked, "device-7");
  }
}

TEST(CsrPolicyTest, Rejects_WeakAndUnsupportedKeys) {
  struct Case {
    const char* kind;
    const char* message;
  };
  for (const Case& c :
       {Case{"RSA-1024", "RSA key of 1024 bits: want 2048 to 8192"},
        Case{"P-192", "only P-256 and P-384"}, Case{"P-521", "only P-256 and P-384"},
        Case{"ED448", "unsupported public key type"}}) {
    SCOPED_TRACE(c.kind);
    auto key = TestKey(c.kind);
    ASSERT_NE(key, nullptr);
    ExpectRefused({.key = key.get()}, c.message);
  }
}

TEST(CsrPolicyTest, Rejects_BadSignature_AsNoProofOfPossession) {
  ExpectRefused({.corrupt_signature = true}, "signature does not verify");
}

TEST(CsrPolicyTest, Rejects_Sha1Signature) {
  ExpectRefused({.digest = EVP_sha1()}, "signed with SHA1: sign it with SHA-256 or stronger");
}

TEST(CsrPolicyTest, ServerKeyGen_IgnoresTheRequestsKeyAndSignature) {
  auto weak = TestKey("RSA-1024");
  auto checked = Check({.key = weak.get(), .corrupt_signature = true}, CsrKeyUse::kIgnore);
  ASSERT_TRUE(checked.has_value()) << checked.error().message();
  EXPECT_EQ(*checked, "device-1");
  // The rest of the policy still applies.
  ExpectRefused({.subject = {{"CN", "a"}, {"O", "b"}}, .corrupt_signature = true},
                "subject carries O", CsrKeyUse::kIgnore);
}

TEST(CsrPolicyTest, Rejects_SubjectsOtherThanOneCn) {
  ExpectRefused({.subject = {}}, "subject has no CN");
  ExpectRefused({.subject = {{"O", "Contoso"}}}, "subject carries O");
  ExpectRefused({.subject = {{"CN", "device-1"}, {"OU", "line-3"}}}, "subject carries OU");
  ExpectRefused({.subject = {{"CN", "device-1"}, {"CN", "device-2"}}}, "has 2 CNs");
  ExpectRefused({.subject = {{"CN", std::string("dev\nice", 7)}}}, "control character");
}

TEST(CsrPolicyTest, Rejects_ChallengePasswordAndUnknownAttributes) {
  ExpectRefused({.challenge_password = "secret"}, "challengePassword, which devid does not accept");
  ExpectRefused({.extra_attribute_nid = NID_pkcs9_unstructuredName},
                "unsupported attribute unstructuredName");
}

TEST(CsrPolicyTest, Accepts_ExtensionsTheProfileSetsAnyway) {
  auto checked = Check({.extensions = {{NID_key_usage, "critical,digitalSignature"},
                                       {NID_ext_key_usage, "clientAuth"},
                                       {NID_basic_constraints, "critical,CA:FALSE"}}});
  EXPECT_TRUE(checked.has_value()) << checked.error().message();
}

TEST(CsrPolicyTest, Rejects_OtherRequestedExtensions) {
  ExpectRefused({.extensions = {{NID_subject_alt_name, "DNS:device-1.example.com"}}},
                "asks for a subjectAltName");
  ExpectRefused({.extensions = {{NID_basic_constraints, "critical,CA:TRUE"}}},
                "asks for a CA certificate");
  ExpectRefused({.extensions = {{NID_netscape_comment, "hello"}}}, "asks for extension nsComment");
}

}  // namespace
}  // namespace devid::ca
