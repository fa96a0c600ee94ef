#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/core_names.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "base/hex.h"
#include "ossl/base64.h"
#include "tpm/credential.h"
#include "tpm/crypto.h"
#include "tpm/marshal.h"
#include "tpm/public_area.h"
#include "tpm/testing/software_tpm.h"

namespace devid::tpm {
namespace {

using ::testing::HasSubstr;
using testing::SoftwareTpm;

Bytes Hex(std::string_view hex) {
  Bytes out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::string ToHex(std::span<const uint8_t> bytes) { return HexEncode(bytes); }

nlohmann::json Vectors(std::string_view file) {
  std::ifstream in(std::filesystem::path(__FILE__).parent_path() / "testdata" / file);
  return nlohmann::json::parse(in);
}

// CountingRandom is a repeatable Random: byte i of its stream is (seed + i) mod 256.
class CountingRandom final : public Random {
 public:
  explicit CountingRandom(uint8_t seed) : next_(seed) {}
  void Fill(uint8_t* out, size_t n) override {
    for (size_t i = 0; i < n; ++i) out[i] = next_++;
  }

 private:
  uint8_t next_;
};

// KDFs against the conformance vectors (README in testdata/).

TEST(Kdf, Matches_KdfaVectors) {
  nlohmann::json vectors = Vectors("kdfa.json");
  ASSERT_EQ(vectors.size(), 100u);
  for (const auto& v : vectors) {
    auto out = Kdfa(static_cast<Alg>(v["HashAlg"].get<int>()), Hex(v["Key"].get<std::string>()),
                    v["Label"].get<std::string>(), Hex(v["ContextU"].get<std::string>()),
                    Hex(v["ContextV"].get<std::string>()), v["Bits"].get<uint32_t>());
    ASSERT_TRUE(out) << v["Name"] << out.error().message();
    EXPECT_EQ(ToHex(*out), v["Result"].get<std::string>()) << v["Name"];
  }
}

TEST(Kdf, Matches_KdfeVectors) {
  nlohmann::json vectors = Vectors("kdfe.json");
  ASSERT_EQ(vectors.size(), 100u);
  for (const auto& v : vectors) {
    auto out = Kdfe(static_cast<Alg>(v["HashAlg"].get<int>()), Hex(v["Z"].get<std::string>()),
                    v["Label"].get<std::string>(), Hex(v["ContextU"].get<std::string>()),
                    Hex(v["ContextV"].get<std::string>()), v["Bits"].get<uint32_t>());
    ASSERT_TRUE(out) << v["Name"] << out.error().message();
    EXPECT_EQ(ToHex(*out), v["Result"].get<std::string>()) << v["Name"];
  }
}

TEST(Kdf, Rejects_UnsupportedHash) {
  auto bad_hash = Kdfa(Alg::kAes, Hex("00"), "STORAGE", {}, {}, 128);
  ASSERT_FALSE(bad_hash);
  EXPECT_EQ(bad_hash.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(Kdfe(Alg::kNull, Hex("00"), "STORAGE", {}, {}, 128));
  EXPECT_TRUE(Kdfa(Alg::kSha256, Hex("00"), "STORAGE", {}, {}, 0)->empty());
}

// PrivateFromPrime rebuilds an RSA private key from its public area and the prime p of a
// TPMT_SENSITIVE (Part 2 §12.3.2.4), as the vectors give it.
ossl::UniquePtr<EVP_PKEY> PrivateFromPrime(const RsaPublic& pub, std::span<const uint8_t> sens) {
  Reader r(sens);
  EXPECT_TRUE(r.U16("type"));
  EXPECT_TRUE(r.B2("authValue"));
  EXPECT_TRUE(r.B2("seedValue"));
  auto prime = r.B2("prime");
  EXPECT_TRUE(prime);
  ossl::UniquePtr<BN_CTX> bn_ctx(BN_CTX_new());
  ossl::UniquePtr<BIGNUM> n(
      BN_bin2bn(pub.modulus.data(), static_cast<int>(pub.modulus.size()), nullptr));
  ossl::UniquePtr<BIGNUM> p(BN_bin2bn(prime->data(), static_cast<int>(prime->size()), nullptr));
  ossl::UniquePtr<BIGNUM> e(BN_new());
  BN_set_word(e.get(), pub.exponent == 0 ? 65537 : pub.exponent);
  ossl::UniquePtr<BIGNUM> q(BN_new()), rem(BN_new()), p1(BN_dup(p.get())), q1(BN_new()),
      phi(BN_new()), d(BN_new());
  BN_div(q.get(), rem.get(), n.get(), p.get(), bn_ctx.get());
  EXPECT_TRUE(BN_is_zero(rem.get()));
  BN_copy(q1.get(), q.get());
  BN_sub_word(p1.get(), 1);
  BN_sub_word(q1.get(), 1);
  BN_mul(phi.get(), p1.get(), q1.get(), bn_ctx.get());
  BN_mod_inverse(d.get(), e.get(), phi.get(), bn_ctx.get());
  ossl::UniquePtr<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get());
  OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get());
  OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_D, d.get());
  ossl::UniquePtr<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(bld.get()));
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* key = nullptr;
  EXPECT_EQ(EVP_PKEY_fromdata_init(ctx.get()), 1);
  EXPECT_EQ(EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_KEYPAIR, params.get()), 1);
  return ossl::UniquePtr<EVP_PKEY>(key);
}

// The vectors' ciphertexts were made with a fixed OAEP seed; OpenSSL draws its own, so the check
// is that ours decrypt to the vector's secret under the label and hash a TPM would use, and that
// what we encrypt decrypts back.
TEST(RsaOaep, Matches_LabeledEncapsulationVectors) {
  nlohmann::json vectors = Vectors("rsa_labeled_encaps.json");
  ASSERT_EQ(vectors.size(), 100u);
  int identity = 0, duplicate = 0;
  for (const auto& v : vectors) {
    auto pub = ParseRsaTpmtPublic(Hex(v["PublicKey"].get<std::string>()));
    ASSERT_TRUE(pub) << v["Name"] << pub.error().message();
    auto key = PrivateFromPrime(*pub, Hex(v["PrivateKey"].get<std::string>()));
    ASSERT_TRUE(key) << v["Name"];
    Bytes label = Label(v["Label"].get<std::string>());
    auto secret =
        RsaOaepDecrypt(key.get(), pub->OaepHash(), label, Hex(v["Ciphertext"].get<std::string>()));
    ASSERT_TRUE(secret) << v["Name"] << secret.error().message();
    EXPECT_EQ(ToHex(*secret), v["Secret"].get<std::string>()) << v["Name"];

    auto evp = pub->ToEvp();
    ASSERT_TRUE(evp);
    auto ours = RsaOaepEncrypt(evp->get(), pub->OaepHash(), label, *secret);
    ASSERT_TRUE(ours) << v["Name"];
    auto back = RsaOaepDecrypt(key.get(), pub->OaepHash(), label, *ours);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, *secret);
    // A different label must not decrypt (the label binds the secret's purpose).
    EXPECT_FALSE(RsaOaepDecrypt(key.get(), pub->OaepHash(), Label("OTHER"), *ours));
    identity += v["Label"] == "IDENTITY";
    duplicate += v["Label"] == "DUPLICATE";
  }
  EXPECT_GT(identity, 10);
  EXPECT_GT(duplicate, 10);
}

TEST(AesCfb, RoundTrips_AndRejectsBadKeySize) {
  Bytes key(16, 7), data = Hex("00112233445566778899aabbccddeeff0102");
  auto enc = AesCfbEncrypt(key, data);
  ASSERT_TRUE(enc);
  EXPECT_EQ(enc->size(), data.size());
  EXPECT_NE(*enc, data);
  EXPECT_EQ(*AesCfbDecrypt(key, *enc), data);
  auto bad = AesCfbEncrypt(Bytes(15), data);
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("16, 24 or 32"));
}

// Public areas.

TEST(PublicArea, Marshals_AzureTemplatesAsObserved) {
  SoftwareTpm tpm;
  // Protocol notes §4.1: the observed EK and SRK sizes and leading bytes.
  Bytes ek = tpm.ek().Tpm2b();
  Bytes srk = tpm.srk().Tpm2b();
  EXPECT_EQ(ek.size(), 316u);
  EXPECT_EQ(ToHex(std::span(ek).first(16)), "013a0001000b000300b2002083719767");
  EXPECT_EQ(srk.size(), 284u);
  EXPECT_EQ(ToHex(std::span(srk).first(28)),
            "011a0001000b0003047200000006008000430010080000000000"
            "0100");
}

TEST(PublicArea, RoundTrips_ParseOfTpm2bPublic) {
  SoftwareTpm tpm;
  auto parsed = ParseRsaPublicBase64(tpm.EkBase64());
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->name_alg, Alg::kSha256);
  EXPECT_EQ(parsed->attributes, 0x000300b2u);
  EXPECT_EQ(parsed->symmetric, Alg::kAes);
  EXPECT_EQ(parsed->symmetric_bits, 128);
  EXPECT_EQ(parsed->symmetric_mode, Alg::kCfb);
  EXPECT_EQ(parsed->key_bits, 2048);
  EXPECT_TRUE(parsed->SameKey(tpm.ek()));
  EXPECT_FALSE(parsed->SameKey(tpm.srk()));
  EXPECT_EQ(parsed->Tpm2b(), tpm.ek().Tpm2b());
  EXPECT_EQ(MarshalRsaPublic(*parsed), parsed->tpmt);
  auto name = parsed->Name();
  ASSERT_TRUE(name);
  EXPECT_EQ(name->size(), 34u);
  EXPECT_EQ(ToHex(std::span(*name).first(2)), "000b");
  EXPECT_EQ(ToHex(std::span(*name).subspan(2)), ToHex(*Hash(Alg::kSha256, parsed->tpmt)));
}

TEST(PublicArea, Rejects_MalformedAreas) {
  SoftwareTpm tpm;
  Bytes good = tpm.ek().Tpm2b();
  struct Case {
    std::string name;
    Bytes bytes;
    std::string message;
  };
  Bytes truncated(good.begin(), good.end() - 1);
  Bytes trailing = good;
  trailing.push_back(0);
  Bytes inner_trailing = B2(Concat(tpm.ek().tpmt, Bytes{0}));
  Bytes ecc = good;
  ecc[3] = 0x23;  // TPM_ALG_ECC
  Bytes bad_bits = good;
  bad_bits[2 + 2 + 2 + 4 + 2 + 32 + 6 + 2] = 0x04;  // keyBits 1024 with a 2048-bit modulus
  RsaPublic small = tpm.ek();
  small.modulus.resize(10);
  small.key_bits = 80;
  for (const Case& c : std::vector<Case>{
           {"empty", {}, "needed"},
           {"truncated", truncated, "needed"},
           {"trailing", trailing, "follow"},
           {"inner trailing", inner_trailing, "after the public area"},
           {"ecc", ecc, "not TPM_ALG_RSA"},
           {"keyBits", bad_bits, "keyBits"},
       }) {
    auto parsed = ParseRsaPublic(c.bytes);
    ASSERT_FALSE(parsed) << c.name;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument) << c.name;
    EXPECT_THAT(parsed.error().message(), HasSubstr(c.message)) << c.name;
  }
  EXPECT_FALSE(ParseRsaPublicBase64("not base64!"));
}

TEST(RegistrationId, Is_LowercaseUnpaddedBase32OfSha256) {
  std::string_view devid = "devid";
  EXPECT_EQ(
      RegistrationIdFromEk(std::span(reinterpret_cast<const uint8_t*>(devid.data()), devid.size())),
      "br74ija4kjv6u3ybf6lxeips2r3jgmya6ik2ochoedkhgqrrs4rq");
  SoftwareTpm tpm;
  EXPECT_EQ(tpm.RegistrationId().size(), 52u);  // ceil(256 / 5)
}

// Credential protection and duplication.

TEST(HmacKeyObject, Matches_ProtocolLayout) {
  CountingRandom random(1);
  Bytes key(32, 0x42);
  auto object = MakeHmacKeyObject(key, random);
  ASSERT_TRUE(object);
  // Protocol notes §4.4: KEYEDHASH, SHA-256, 0x00040440, PolicyCommandCode(Duplicate),
  // HMAC-SHA256.
  EXPECT_EQ(object->public_area.size(), 80u);
  EXPECT_EQ(ToHex(std::span(object->public_area).first(48)),
            "0008000b000404400020bef56b8c1cc84e11edd717528d2cd99356bd2bbf8f015209c3f84aeeaba8e8a2"
            "0005000b0020");
  EXPECT_EQ(object->sensitive.size(), 2u + 2 + 2 + 2 + 32 + 2 + 32);
  EXPECT_EQ(object->name.size(), 34u);
}

TEST(ActivationBlob, Has_ProtocolLayoutAndActivatesToTheKey) {
  SoftwareTpm tpm;
  SecureRandom random;
  Bytes key = random.Bytes(32);
  auto blob = BuildActivationBlob(tpm.ek(), tpm.srk(), key, random);
  ASSERT_TRUE(blob) << blob.error().message();
  // Protocol notes §4.3: field sizes of a real blob, URI data empty.
  Reader r(*blob);
  EXPECT_EQ(r.B2("id")->size(), 52u);
  EXPECT_EQ(r.B2("secret")->size(), 256u);
  EXPECT_EQ(r.B2("private")->size(), 142u);
  EXPECT_EQ(r.B2("seed")->size(), 256u);
  EXPECT_EQ(r.B2("public")->size(), 80u);
  EXPECT_EQ(r.B2("data")->size(), 0u);
  EXPECT_TRUE(r.done());

  auto activation = tpm.Activate(*blob);
  ASSERT_TRUE(activation) << activation.error().message();
  EXPECT_EQ(activation->hmac_key, key);
  EXPECT_EQ(activation->inner_key.size(), 16u);
}

TEST(ActivationBlob, Encrypts_UriDataUnderInnerKey) {
  SoftwareTpm tpm;
  SecureRandom random;
  auto blob = BuildActivationBlob(tpm.ek(), tpm.srk(), Bytes(32, 1), random, "amqps://hub");
  ASSERT_TRUE(blob);
  auto activation = tpm.Activate(*blob);
  ASSERT_TRUE(activation) << activation.error().message();
  auto uri = AesCfbDecrypt(activation->inner_key, activation->encrypted_uri);
  ASSERT_TRUE(uri);
  EXPECT_EQ(std::string(uri->begin(), uri->end()), "amqps://hub");
}

TEST(ActivationBlob, Is_RepeatableWithRepeatableRandomButForOaep) {
  SoftwareTpm tpm;
  CountingRandom a(9), b(9);
  Bytes key(32, 3);
  auto first = BuildActivationBlob(tpm.ek(), tpm.srk(), key, a);
  auto second = BuildActivationBlob(tpm.ek(), tpm.srk(), key, b);
  ASSERT_TRUE(first && second);
  // The identity key's public area (last before the empty data) depends only on Random.
  EXPECT_EQ(ToHex(std::span(*first).subspan(first->size() - 2 - 80, 80)),
            ToHex(std::span(*second).subspan(second->size() - 2 - 80, 80)));
  EXPECT_EQ(*tpm.Activate(*first)->hmac_key.data(), 3);
  EXPECT_EQ(tpm.Activate(*second)->inner_key, tpm.Activate(*first)->inner_key);
}

TEST(ActivationBlob, Rejects_ActivationOnAnotherTpm) {
  SoftwareTpm tpm, other;
  SecureRandom random;
  auto blob = BuildActivationBlob(tpm.ek(), tpm.srk(), Bytes(32, 1), random);
  ASSERT_TRUE(blob);
  EXPECT_FALSE(other.Activate(*blob));
}

TEST(ActivationBlob, Rejects_CredentialBoundToAnotherName) {
  SoftwareTpm tpm;
  SecureRandom random;
  Bytes inner(16, 5);
  auto credential = MakeCredential(tpm.ek(), *tpm.ek().Name(), inner, random);
  ASSERT_TRUE(credential);
  auto wrong =
      tpm.ActivateCredential(*tpm.srk().Name(), credential->credential_blob, credential->secret);
  ASSERT_FALSE(wrong);
  EXPECT_THAT(wrong.error().message(), HasSubstr("TPM_RC_INTEGRITY"));
  EXPECT_EQ(
      *tpm.ActivateCredential(*tpm.ek().Name(), credential->credential_blob, credential->secret),
      inner);
}

TEST(ActivationBlob, Rejects_TamperedDuplicate) {
  SoftwareTpm tpm;
  SecureRandom random;
  auto blob = BuildActivationBlob(tpm.ek(), tpm.srk(), Bytes(32, 1), random);
  ASSERT_TRUE(blob);
  Bytes tampered = *blob;
  tampered[54 + 258 + 2 + 34 + 5] ^= 1;  // a byte of the outer-encrypted duplicate
  auto activation = tpm.Activate(tampered);
  ASSERT_FALSE(activation);
  EXPECT_THAT(activation.error().message(), HasSubstr("TPM_RC_INTEGRITY"));
}

TEST(ActivationBlob, Rejects_KeysThatCannotProtect) {
  SoftwareTpm tpm;
  SecureRandom random;
  RsaPublic signing = tpm.ek();
  signing.attributes &= ~kDecrypt;
  auto not_decrypt = BuildActivationBlob(signing, tpm.srk(), Bytes(32, 1), random);
  ASSERT_FALSE(not_decrypt);
  EXPECT_THAT(not_decrypt.error().message(), HasSubstr("restricted decryption"));
  RsaPublic no_sym = tpm.srk();
  no_sym.symmetric = Alg::kNull;
  auto no_symmetric = BuildActivationBlob(tpm.ek(), no_sym, Bytes(32, 1), random);
  ASSERT_FALSE(no_symmetric);
  EXPECT_THAT(no_symmetric.error().message(), HasSubstr("AES"));
  EXPECT_FALSE(MakeCredential(tpm.ek(), *tpm.srk().Name(), Bytes(33, 1), random));
}

}  // namespace
}  // namespace devid::tpm
