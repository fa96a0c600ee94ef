#include "attestation/tpm/ek_certificate.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "attestation/x509/chain_verifier.h"
#include "ossl/error.h"

namespace devid::attestation {

Result<EkManufacturerRoots> LoadEkManufacturerRoots(std::string_view pem) {
  DEVID_ASSIGN_OR_RETURN(std::vector<pki::Certificate> all, pki::Certificate::AllFromPem(pem));
  if (all.empty()) {
    return std::unexpected(InvalidArgument("the TPM manufacturer root bundle has no certificate"));
  }
  EkManufacturerRoots roots;
  for (pki::Certificate& certificate : all) {
    bool self_signed = X509_check_issued(certificate.get(), certificate.get()) == X509_V_OK;
    (self_signed ? roots.anchors : roots.intermediates).push_back(std::move(certificate));
  }
  if (roots.anchors.empty()) {
    return std::unexpected(
        InvalidArgument("the TPM manufacturer root bundle has no self-signed root"));
  }
  return roots;
}

Status VerifyEkCertificate(std::span<const uint8_t> der, const tpm::RsaPublic& ek,
                           const EkManufacturerRoots& roots,
                           std::chrono::system_clock::time_point at) {
  auto certificate = pki::Certificate::FromDer(
      std::string_view(reinterpret_cast<const char*>(der.data()), der.size()));
  if (!certificate) {
    return std::unexpected(InvalidArgument("tpm.endorsementKeyCertificate: " +
                                           certificate.error().message()));
  }
  // Vendor EK certificates are often not RFC 5280-strict (empty subjects, critical SAN with
  // TPM manufacturer attributes), carry no CRL devid can fetch, and are RSA-2048 or ECC by spec.
  ChainPolicy policy;
  policy.x509_strict = false;
  policy.check_revocation = false;
  auto path = VerifyChain(*certificate, roots.intermediates, roots.anchors, {}, at, policy);
  if (!path) {
    return std::unexpected(Unauthenticated(
        "the EK certificate does not validate to a TPM manufacturer root: " +
        path.error().message()));
  }
  DEVID_ASSIGN_OR_RETURN(ossl::UniquePtr<EVP_PKEY> ek_key, ek.ToEvp());
  EVP_PKEY* certified = X509_get0_pubkey(certificate->get());
  if (certified == nullptr || EVP_PKEY_eq(certified, ek_key.get()) != 1) {
    ossl::ErrorFromQueue("comparing the EK certificate's key");  // leave the queue empty
    return std::unexpected(Unauthenticated(
        "the EK certificate (" + certificate->SubjectName() +
        ") is for another key than the endorsement key the device presented"));
  }
  return Ok();
}

}  // namespace devid::attestation
