#include "tpm/quote.h"

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <string>

#include "ossl/error.h"
#include "ossl/unique_ptr.h"

namespace devid::tpm {
namespace {

constexpr uint32_t kTpmGeneratedValue = 0xff544347;  // Part 2 §6.2: "\xffTCG"
constexpr uint16_t kStAttestQuote = 0x8018;          // Part 2 §6.9
constexpr size_t kMaxPcrSelect = 4;                  // PCR_SELECT_MAX bytes (up to 32 PCRs)

Error Bad(std::string what) { return InvalidArgument("parsing TPMS_ATTEST: " + std::move(what)); }

Result<Bytes> Copy(Result<std::span<const uint8_t>> bytes) {
  if (!bytes) return std::unexpected(bytes.error());
  return Bytes(bytes->begin(), bytes->end());
}

}  // namespace

Result<Quote> ParseQuote(std::span<const uint8_t> tpms_attest) {
  Reader r(tpms_attest);
  Quote q;
  DEVID_ASSIGN_OR_RETURN(uint32_t magic, r.U32("magic"));
  if (magic != kTpmGeneratedValue) {
    return std::unexpected(Bad("magic is not TPM_GENERATED_VALUE: not made by a TPM"));
  }
  DEVID_ASSIGN_OR_RETURN(uint16_t type, r.U16("type"));
  if (type != kStAttestQuote) {
    return std::unexpected(Bad("type is not TPM_ST_ATTEST_QUOTE"));
  }
  DEVID_ASSIGN_OR_RETURN(q.qualified_signer, Copy(r.B2("qualifiedSigner")));
  DEVID_ASSIGN_OR_RETURN(q.extra_data, Copy(r.B2("extraData")));
  // TPMS_CLOCK_INFO (§10.11.1): clock u64, resetCount, restartCount, safe.
  DEVID_ASSIGN_OR_RETURN(uint32_t clock_high, r.U32("clockInfo.clock"));
  DEVID_ASSIGN_OR_RETURN(uint32_t clock_low, r.U32("clockInfo.clock"));
  q.clock = uint64_t{clock_high} << 32 | clock_low;
  DEVID_ASSIGN_OR_RETURN(q.reset_count, r.U32("clockInfo.resetCount"));
  DEVID_ASSIGN_OR_RETURN(q.restart_count, r.U32("clockInfo.restartCount"));
  DEVID_ASSIGN_OR_RETURN(auto safe, r.Raw(1, "clockInfo.safe"));
  q.safe = safe[0] != 0;
  DEVID_ASSIGN_OR_RETURN(uint32_t fw_high, r.U32("firmwareVersion"));
  DEVID_ASSIGN_OR_RETURN(uint32_t fw_low, r.U32("firmwareVersion"));
  q.firmware_version = uint64_t{fw_high} << 32 | fw_low;
  // TPMS_QUOTE_INFO (§10.12.4): TPML_PCR_SELECTION pcrSelect, TPM2B_DIGEST pcrDigest.
  DEVID_ASSIGN_OR_RETURN(uint32_t count, r.U32("pcrSelect.count"));
  if (count > 16) return std::unexpected(Bad("pcrSelect has " + std::to_string(count) + " banks"));
  for (uint32_t i = 0; i < count; ++i) {
    PcrSelection selection;
    DEVID_ASSIGN_OR_RETURN(uint16_t hash, r.U16("pcrSelect.hash"));
    selection.hash = static_cast<Alg>(hash);
    DEVID_ASSIGN_OR_RETURN(auto size, r.Raw(1, "pcrSelect.sizeofSelect"));
    if (size[0] > kMaxPcrSelect) {
      return std::unexpected(Bad("pcrSelect.sizeofSelect is " + std::to_string(size[0])));
    }
    DEVID_ASSIGN_OR_RETURN(auto bitmap, r.Raw(size[0], "pcrSelect.pcrSelect"));
    for (uint32_t pcr = 0; pcr < bitmap.size() * 8; ++pcr) {
      if (bitmap[pcr / 8] & (1u << (pcr % 8))) selection.pcrs.push_back(pcr);
    }
    q.pcr_select.push_back(std::move(selection));
  }
  DEVID_ASSIGN_OR_RETURN(q.pcr_digest, Copy(r.B2("pcrDigest")));
  if (!r.done()) {
    return std::unexpected(Bad(std::to_string(r.remaining()) + " bytes after the quote"));
  }
  return q;
}

Result<Signature> ParseSignature(std::span<const uint8_t> tpmt_signature) {
  Reader r(tpmt_signature);
  Signature s;
  DEVID_ASSIGN_OR_RETURN(uint16_t scheme, r.U16("TPMT_SIGNATURE.sigAlg"));
  s.scheme = static_cast<Alg>(scheme);
  if (s.scheme != Alg::kRsassa && s.scheme != Alg::kRsapss) {
    return std::unexpected(InvalidArgument(
        "parsing TPMT_SIGNATURE: only RSASSA and RSAPSS signatures are supported"));
  }
  DEVID_ASSIGN_OR_RETURN(uint16_t hash, r.U16("TPMT_SIGNATURE.hash"));
  s.hash = static_cast<Alg>(hash);
  if (DigestName(s.hash) == nullptr) {
    return std::unexpected(InvalidArgument("parsing TPMT_SIGNATURE: unsupported hash"));
  }
  DEVID_ASSIGN_OR_RETURN(auto sig, r.B2("TPMT_SIGNATURE.sig"));
  s.signature.assign(sig.begin(), sig.end());
  if (!r.done()) {
    return std::unexpected(InvalidArgument("parsing TPMT_SIGNATURE: " +
                                           std::to_string(r.remaining()) + " trailing bytes"));
  }
  return s;
}

Status VerifyQuoteSignature(const RsaPublic& key, std::span<const uint8_t> signed_data,
                            const Signature& signature) {
  if (key.scheme != Alg::kNull &&
      (key.scheme != signature.scheme || key.scheme_hash != signature.hash)) {
    return std::unexpected(
        InvalidArgument("the signature's scheme is not the attestation key's signing scheme"));
  }
  DEVID_ASSIGN_OR_RETURN(ossl::UniquePtr<EVP_PKEY> pkey, key.ToEvp());
  ossl::UniquePtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (!ctx || EVP_DigestVerifyInit_ex(ctx.get(), &pctx, DigestName(signature.hash), nullptr,
                                      nullptr, pkey.get(), nullptr) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("setting up the quote signature check"));
  }
  // RSAPSS: the TPM uses the largest salt the key allows (Part 1 §B.7), "auto" accepts any.
  int padding = signature.scheme == Alg::kRsapss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING;
  if (EVP_PKEY_CTX_set_rsa_padding(pctx, padding) != 1 ||
      (padding == RSA_PKCS1_PSS_PADDING &&
       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1)) {
    return std::unexpected(ossl::ErrorFromQueue("setting up the quote signature check"));
  }
  int ok = EVP_DigestVerify(ctx.get(), signature.signature.data(), signature.signature.size(),
                            signed_data.data(), signed_data.size());
  if (ok != 1) {
    ossl::ErrorFromQueue("verifying the quote signature");  // leave the queue empty
    return std::unexpected(
        Unauthenticated("the quote signature does not verify with the attestation key"));
  }
  return Ok();
}

Result<Bytes> PcrCompositeDigest(Alg hash, std::span<const Bytes> pcr_values) {
  Bytes all;
  for (const Bytes& value : pcr_values) all.insert(all.end(), value.begin(), value.end());
  return Hash(hash, all);
}

}  // namespace devid::tpm
