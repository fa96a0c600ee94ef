#pragma once

#include <openssl/evp.h>

#include <string>

#include "base/result.h"
#include "pki/csr.h"

namespace devid::ca {

// CsrKeyUse says what happens to a request's public key.
enum class CsrKeyUse {
  kCertify,  // the key is certified: the request must prove possession of it (simple(re)enroll)
  kIgnore,   // the server generates the key (RFC 7030 §4.4.1: it MUST ignore the request's
             // public key and signature), so neither is checked
};

// CheckSubjectPublicKey accepts the key types devid certifies for devices: RSA of 2048 to 8192
// bits (NIST SP 800-131A; more only costs the CA), EC on P-256 or P-384, and Ed25519. Any other
// key (RSA-1024, P-192, P-521, Ed448, RSA-PSS-only, DSA) fails with kInvalidArgument naming it.
Status CheckSubjectPublicKey(const EVP_PKEY* key);

// CheckDeviceCsr applies devid's policy for a device's certification request, the same for every
// EST enrollment (RFC 7030 §4.2.1 simpleenroll, §4.2.2 simplereenroll, §4.4.1 serverkeygen), and
// returns the subject CN: the registration ID the request is for. The caller still checks that
// the requester is authenticated as that registration ID. The policy:
//   - with key_use kCertify, the self-signature verifies with the request's own key (proof of
//     possession, RFC 7030 §3.4), with SHA-256 or stronger, and the key passes
//     CheckSubjectPublicKey;
//   - the subject is exactly one CN and nothing else: device-client certificates name the device
//     by CN only, so an O, OU, serialNumber or second CN would be silently dropped, and
//     re-enrollment (§4.2.2) needs the subject to stay exactly the same;
//   - the only attribute allowed is extensionRequest (RFC 2985 §5.4.2), and in it only the
//     extensions the device-client profile sets anyway (keyUsage, extendedKeyUsage,
//     subjectKeyIdentifier, basicConstraints without CA): the profile decides their values. A
//     subjectAltName, a CA basicConstraints or any other extension is refused rather than left
//     out. challengePassword (RFC 2985 §5.4.1) is refused: devid authenticates with the SAS token
//     or a devid certificate, never a password in the request.
// Fails with kInvalidArgument naming the first violation.
Result<std::string> CheckDeviceCsr(const pki::Csr& csr, CsrKeyUse key_use);

}  // namespace devid::ca
