#include "attestation/tpm/measured_boot.h"

#include <openssl/crypto.h>

#include "base/hex.h"
#include "ossl/base64.h"
#include "ossl/mac.h"
#include "tpm/credential.h"
#include "tpm/quote.h"

namespace devid::attestation {
namespace {

Error MeasuredBoot(std::string why) { return Unauthenticated("measured boot: " + std::move(why)); }

ossl::Sha256Digest QuoteNonce(std::span<const uint8_t> challenge_key) {
  return ossl::HmacSha256(challenge_key, "devid measured-boot quote nonce");
}

// AkCredentialSecret binds the secret to the AK's Name as well as to the challenge, so a
// credential activated for one AK does not vouch for another.
ossl::Sha256Digest AkCredentialSecret(std::span<const uint8_t> challenge_key,
                                      std::span<const uint8_t> ak_name) {
  std::string message = "devid attestation key credential ";
  message.append(reinterpret_cast<const char*>(ak_name.data()), ak_name.size());
  return ossl::HmacSha256(challenge_key, message);
}

Result<tpm::Bytes> Decode(const std::string& base64, std::string_view field) {
  auto bytes = ossl::Base64Decode(base64);
  if (!bytes) {
    return std::unexpected(InvalidArgument("tpm." + std::string(field) + " is not base64"));
  }
  return tpm::Bytes(bytes->begin(), bytes->end());
}

std::string PcrList(const tpm::PcrSelection& s) {
  std::string out = tpm::BankName(s.hash) + ":";
  for (size_t i = 0; i < s.pcrs.size(); ++i) out += (i ? "," : "") + std::to_string(s.pcrs[i]);
  return out;
}

}  // namespace

Result<tpm::RsaPublic> ParseAttestationKey(std::string_view base64) {
  auto ak = tpm::ParseRsaPublicBase64(base64);
  if (!ak) return std::unexpected(ak.error().WithContext("tpm.attestationKey"));
  constexpr uint32_t kRequired = tpm::kRestricted | tpm::kSign | tpm::kFixedTpm;
  if ((ak->attributes & kRequired) != kRequired || (ak->attributes & tpm::kDecrypt) != 0) {
    return std::unexpected(InvalidArgument(
        "tpm.attestationKey must be a restricted, fixedTPM signing key (an attestation key)"));
  }
  return ak;
}

Result<QuoteChallenge> MakeQuoteChallenge(const tpm::RsaPublic& ek, const tpm::RsaPublic& ak,
                                          std::span<const uint8_t> challenge_key, Random& random) {
  DEVID_ASSIGN_OR_RETURN(tpm::Bytes ak_name, ak.Name());
  ossl::Sha256Digest secret = AkCredentialSecret(challenge_key, ak_name);
  auto credential = tpm::MakeCredential(ek, ak_name, secret, random);
  OPENSSL_cleanse(secret.data(), secret.size());
  if (!credential) {
    return std::unexpected(credential.error().WithContext("making the attestation key credential"));
  }
  ossl::Sha256Digest nonce = QuoteNonce(challenge_key);
  tpm::Writer blob;
  blob.B2(credential->credential_blob).B2(credential->secret);
  return QuoteChallenge{ossl::Base64Encode(nonce), ossl::Base64Encode(blob.bytes())};
}

Status VerifyQuote(const tpm::PcrPolicy& policy, const QuoteEvidence& evidence,
                   std::span<const uint8_t> challenge_key) {
  if (evidence.attestation_key.empty() || evidence.attestation_key_credential.empty() ||
      evidence.quote.empty() || evidence.quote_signature.empty()) {
    return std::unexpected(MeasuredBoot(
        "the enrollment has a PCR policy; the request must carry tpm.attestationKey, "
        "tpm.attestationKeyCredential, tpm.quote and tpm.quoteSignature"));
  }
  DEVID_ASSIGN_OR_RETURN(tpm::RsaPublic ak, ParseAttestationKey(evidence.attestation_key));
  DEVID_ASSIGN_OR_RETURN(tpm::Bytes ak_name, ak.Name());
  DEVID_ASSIGN_OR_RETURN(tpm::Bytes activated,
                         Decode(evidence.attestation_key_credential, "attestationKeyCredential"));
  ossl::Sha256Digest expected = AkCredentialSecret(challenge_key, ak_name);
  bool bound = ossl::ConstantTimeEquals(activated, expected);
  OPENSSL_cleanse(expected.data(), expected.size());
  if (!bound) {
    return std::unexpected(MeasuredBoot(
        "the attestation key is not bound to the endorsement key: its credential was not "
        "activated by the TPM that holds the EK (an AK from another TPM, or another AK)"));
  }
  DEVID_ASSIGN_OR_RETURN(tpm::Bytes attest, Decode(evidence.quote, "quote"));
  DEVID_ASSIGN_OR_RETURN(tpm::Bytes signature_bytes,
                         Decode(evidence.quote_signature, "quoteSignature"));
  auto signature = tpm::ParseSignature(signature_bytes);
  if (!signature) return std::unexpected(signature.error().WithContext("tpm.quoteSignature"));
  if (auto verified = tpm::VerifyQuoteSignature(ak, attest, *signature); !verified) {
    return std::unexpected(MeasuredBoot(verified.error().message()));
  }
  // TPM2_Quote hashes the PCR values with the signing scheme's hash (Part 3 §18.4); the policy's
  // digests are of its bank's size, so the two must agree.
  if (signature->hash != policy.bank) {
    return std::unexpected(MeasuredBoot("the quote is signed with " +
                                        tpm::BankName(signature->hash) +
                                        "; the enrollment's PCR policy digests are " +
                                        tpm::BankName(policy.bank)));
  }
  auto quote = tpm::ParseQuote(attest);
  if (!quote) return std::unexpected(quote.error().WithContext("tpm.quote"));
  if (quote->extra_data.empty()) {
    return std::unexpected(MeasuredBoot("the quote carries no nonce (qualifyingData is empty)"));
  }
  ossl::Sha256Digest nonce = QuoteNonce(challenge_key);
  if (!ossl::ConstantTimeEquals(quote->extra_data, nonce)) {
    return std::unexpected(MeasuredBoot(
        "the quote's nonce is not this challenge's (a stale or replayed quote); quote with the "
        "nonce of the latest challenge"));
  }
  tpm::PcrSelection wanted{policy.bank, policy.pcrs};
  if (quote->pcr_select.size() != 1 || quote->pcr_select.front() != wanted) {
    std::string got;
    for (const tpm::PcrSelection& s : quote->pcr_select) got += (got.empty() ? "" : " ") + PcrList(s);
    return std::unexpected(MeasuredBoot("the quote covers PCRs " + (got.empty() ? "none" : got) +
                                        "; the enrollment's policy requires " + PcrList(wanted)));
  }
  for (const tpm::Bytes& allowed : policy.digests) {
    if (ossl::ConstantTimeEquals(quote->pcr_digest, allowed)) return Ok();
  }
  return std::unexpected(MeasuredBoot("PCR digest mismatch: PCRs " + PcrList(wanted) +
                                      " digest to " + HexEncode(quote->pcr_digest) +
                                      ", which the enrollment's PCR policy does not allow"));
}

}  // namespace devid::attestation
