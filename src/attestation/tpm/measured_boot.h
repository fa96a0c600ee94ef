#pragma once

#include <span>
#include <string>

#include "base/random.h"
#include "base/result.h"
#include "tpm/pcr_policy.h"
#include "tpm/public_area.h"

namespace devid::attestation {

// Measured boot (devid extension to the DPS TPM flow, docs/device-provisioning.md): an enrollment
// with a PCR policy admits a device only with a TPM2_Quote over the policy's PCRs that carries a
// nonce from this challenge and is signed by an attestation key (AK) resident in the same TPM as
// the EK. Both the nonce and the AK's credential are derived from the challenge's secret device
// key K, so they are fresh per challenge and need no storage of their own.

// QuoteEvidence is what the device's second register request carries in its `tpm` block, all
// base64: the AK's TPM2B_PUBLIC (sent in the first request too), the secret TPM2_ActivateCredential
// recovered from the AK credential, the quote's TPMS_ATTEST and its TPMT_SIGNATURE.
struct QuoteEvidence {
  std::string attestation_key;
  std::string attestation_key_credential;
  std::string quote;
  std::string quote_signature;
};

// QuoteChallenge is the devid extension to the 401 challenge answer, base64: the nonce the
// quote's qualifyingData must be, and a MakeCredential blob (TPM2B_ID_OBJECT ||
// TPM2B_ENCRYPTED_SECRET) to the EK bound to the AK's Name.
struct QuoteChallenge {
  std::string nonce;
  std::string attestation_key_credential;
};

// ParseAttestationKey parses the AK (base64 TPM2B_PUBLIC) and checks it can only be a TPM's own
// attestation key: an RSA restricted signing key with fixedTPM and not a decryption key (TPM 2.0
// Part 1 §25.2: a restricted key signs only digests the TPM made). Fails with kInvalidArgument
// naming tpm.attestationKey.
Result<tpm::RsaPublic> ParseAttestationKey(std::string_view base64);

// MakeQuoteChallenge derives the nonce and the AK credential for the challenge whose device key is
// challenge_key, and wraps the credential to ek bound to Name(ak). Fails like MakeCredential.
Result<QuoteChallenge> MakeQuoteChallenge(const tpm::RsaPublic& ek, const tpm::RsaPublic& ak,
                                          std::span<const uint8_t> challenge_key, Random& random);

// VerifyQuote checks evidence against policy for the challenge whose device key is
// challenge_key, in this order, and fails with kUnauthenticated whose message starts "measured
// boot: " and says which check failed: evidence missing; the AK not bound to the EK (the
// credential secret is not the one wrapped for this AK in this challenge: the AK is not in the
// TPM that holds the EK); a signature that does not verify; a quote without a nonce or with
// another (stale) nonce; PCRs other than the policy's; a PCR digest the policy does not allow.
// Malformed evidence fails with kInvalidArgument.
Status VerifyQuote(const tpm::PcrPolicy& policy, const QuoteEvidence& evidence,
                   std::span<const uint8_t> challenge_key);

}  // namespace devid::attestation
