#pragma once

#include <chrono>
#include <span>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "pki/certificate.h"
#include "tpm/public_area.h"

namespace devid::attestation {

// EkManufacturerRoots is the configured bundle of TPM manufacturer CA certificates that EK
// certificates are validated to: its self-signed certificates are the trust anchors, the others
// intermediates a path may use (a TPM's NV holds only its EK certificate, not the chain).
struct EkManufacturerRoots {
  std::vector<pki::Certificate> anchors;
  std::vector<pki::Certificate> intermediates;
};

// LoadEkManufacturerRoots splits a PEM bundle into anchors and intermediates. Fails with
// kInvalidArgument when the text holds no certificate or one does not parse.
Result<EkManufacturerRoots> LoadEkManufacturerRoots(std::string_view pem);

// VerifyEkCertificate checks der, an EK certificate as the device read it from TPM NV (TCG EK
// Credential Profile §2.2.1.5), against ek, the endorsement key the challenge is made for: the
// certificate must validate at `at` to one of roots' anchors (RFC 5280 path validation; no
// purpose check, since EK certificates carry the TCG EK EKU, not a TLS one), and its public key
// must be ek's. Fails with kUnauthenticated saying which ("the EK certificate does not validate
// to a TPM manufacturer root: …", "… is for another key than the endorsement key"), or
// kInvalidArgument when der does not parse.
Status VerifyEkCertificate(std::span<const uint8_t> der, const tpm::RsaPublic& ek,
                           const EkManufacturerRoots& roots,
                           std::chrono::system_clock::time_point at);

}  // namespace devid::attestation
