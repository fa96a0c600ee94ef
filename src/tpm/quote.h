#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "tpm/crypto.h"
#include "tpm/marshal.h"
#include "tpm/public_area.h"

namespace devid::tpm {

// PcrSelection is one bank of a TPML_PCR_SELECTION (TPM 2.0 Part 2 §10.6): a hash algorithm and
// the PCR indices selected in it, ascending.
struct PcrSelection {
  Alg hash = Alg::kNull;
  std::vector<uint32_t> pcrs;

  bool operator==(const PcrSelection&) const = default;
};

// Quote is a parsed TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE (Part 2 §10.12.8, §10.12.1): what
// TPM2_Quote signs.
struct Quote {
  Bytes qualified_signer;  // TPM2B_NAME contents
  Bytes extra_data;        // TPM2B_DATA contents: the verifier's nonce (qualifyingData)
  uint64_t clock = 0;
  uint32_t reset_count = 0;
  uint32_t restart_count = 0;
  bool safe = false;
  uint64_t firmware_version = 0;
  std::vector<PcrSelection> pcr_select;
  Bytes pcr_digest;  // H_signHash(selected PCR values, in selection order)
};

// ParseQuote parses tpms_attest, the attestation data bytes TPM2_Quote returns in its TPM2B_ATTEST
// (what `tpm2_quote -m` writes). Fails with kInvalidArgument naming the defect: a magic other
// than TPM_GENERATED_VALUE, a type other than TPM_ST_ATTEST_QUOTE, a short or over-long input.
Result<Quote> ParseQuote(std::span<const uint8_t> tpms_attest);

// Signature is a parsed TPMT_SIGNATURE (Part 2 §11.3.4) of an RSA scheme.
struct Signature {
  Alg scheme = Alg::kNull;  // kRsassa or kRsapss
  Alg hash = Alg::kNull;
  Bytes signature;
};

// ParseSignature parses a TPMT_SIGNATURE (what `tpm2_quote -s` writes). Fails with
// kInvalidArgument for schemes other than RSASSA and RSAPSS, unsupported hashes and trailing
// bytes.
Result<Signature> ParseSignature(std::span<const uint8_t> tpmt_signature);

// VerifyQuoteSignature checks that signature is key's signature over signed_data (the
// TPMS_ATTEST bytes) with the scheme and hash it names; when key has a fixed scheme (restricted
// signing keys do) the signature must use it. Fails with kUnauthenticated when it does not
// verify, kInvalidArgument when the scheme does not fit the key.
Status VerifyQuoteSignature(const RsaPublic& key, std::span<const uint8_t> signed_data,
                            const Signature& signature);

// PcrCompositeDigest returns H_hash(v_1 || … || v_n), the pcrDigest a quote of PCR values
// v_1..v_n (in selection order) carries when signed with hash (Part 3 §18.4).
Result<Bytes> PcrCompositeDigest(Alg hash, std::span<const Bytes> pcr_values);

}  // namespace devid::tpm
