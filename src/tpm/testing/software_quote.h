#pragma once

// Test-only: a TPM attestation key in software, to make the TPM2_Quote evidence (TPM 2.0 Part 3
// §18.4) a verifier checks. The AK is an RSA-2048 restricted signing key with RSASSA-SHA256, as
// `tpm2_createak -G rsa -g sha256 -s rsassa` makes; Quote marshals a TPMS_ATTEST and signs it.

#include <openssl/evp.h>

#include <utility>

#include "tpm/quote.h"
#include "tpm/testing/software_tpm.h"

namespace devid::tpm::testing {

// AkTemplate is the AK public area with an empty modulus.
inline RsaPublic AkTemplate() {
  RsaPublic p;
  p.name_alg = Alg::kSha256;
  p.attributes = kFixedTpm | kFixedParent | kSensitiveDataOrigin | kUserWithAuth | kRestricted |
                 kSign;
  p.scheme = Alg::kRsassa;
  p.scheme_hash = Alg::kSha256;
  p.key_bits = 2048;
  return p;
}

// QuoteBytes is TPM2_Quote's output: the TPMS_ATTEST and its TPMT_SIGNATURE.
struct QuoteBytes {
  Bytes attest;
  Bytes signature;
};

// MarshalQuote builds a TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE over selection.
inline Bytes MarshalQuote(std::span<const uint8_t> nonce, const PcrSelection& selection,
                          std::span<const uint8_t> pcr_digest, uint32_t magic = 0xff544347) {
  Writer w;
  w.U32(magic).U16(0x8018).B2(Bytes{0x00, 0x0b, 1, 2, 3}).B2(nonce);
  w.U32(0).U32(1234).U32(1).U32(0).Raw(Bytes{1});  // clockInfo
  w.U32(0x20191023).U32(0);                         // firmwareVersion
  Bytes bitmap(3, 0);
  for (uint32_t pcr : selection.pcrs) bitmap[pcr / 8] |= static_cast<uint8_t>(1u << (pcr % 8));
  w.U32(1).U16(static_cast<uint16_t>(selection.hash)).Raw(Bytes{3}).Raw(bitmap);
  w.B2(pcr_digest);
  return w.Take();
}

class SoftwareAttestationKey {
 public:
  SoftwareAttestationKey()
      : key_(GenerateRsaKey()), public_(PublicFromKey(AkTemplate(), key_.get())) {}

  const RsaPublic& ak() const { return public_; }
  std::string Base64() const { return ossl::Base64Encode(public_.Tpm2b()); }

  // Sign returns the TPMT_SIGNATURE (RSASSA, SHA-256) of data.
  Bytes Sign(std::span<const uint8_t> data) const {
    ossl::UniquePtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
    size_t size = 0;
    if (EVP_DigestSignInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, key_.get(),
                              nullptr) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &size, data.data(), data.size()) != 1) {
      std::abort();
    }
    Bytes sig(size);
    if (EVP_DigestSign(ctx.get(), sig.data(), &size, data.data(), data.size()) != 1) std::abort();
    sig.resize(size);
    return Writer()
        .U16(static_cast<uint16_t>(Alg::kRsassa))
        .U16(static_cast<uint16_t>(Alg::kSha256))
        .B2(sig)
        .Take();
  }

  // Quote quotes pcr_values (in selection order) with nonce, as a TPM would.
  QuoteBytes Quote(std::span<const uint8_t> nonce, const PcrSelection& selection,
                   std::span<const Bytes> pcr_values) const {
    Bytes digest = *PcrCompositeDigest(Alg::kSha256, pcr_values);
    Bytes attest = MarshalQuote(nonce, selection, digest);
    return {attest, Sign(attest)};
  }

 private:
  ossl::UniquePtr<EVP_PKEY> key_;
  RsaPublic public_;
};

}  // namespace devid::tpm::testing
