#pragma once

#include <chrono>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "pki/certificate.h"

namespace devid::pki {

// ChainPolicy is what a certificate path must satisfy, on top of RFC 5280 §6 path validation.
struct ChainPolicy {
  // purpose is an X509_PURPOSE_* the leaf must be fit for (X509_PURPOSE_SSL_CLIENT: keyUsage and
  // extendedKeyUsage allow TLS client authentication); 0 checks no purpose.
  int purpose = 0;
  // max_intermediates bounds the certificates between leaf and trust anchor.
  int max_intermediates = 4;
  // x509_strict adds OpenSSL's RFC 5280 strictness checks (X509_V_FLAG_X509_STRICT: critical
  // basicConstraints on CAs, AKI/SKI present, no negative serials, ...).
  bool x509_strict = true;
  // check_revocation requires a current CRL, from crls, for every certificate of the path
  // (X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL) and honours delta CRLs; a certificate
  // without one fails ("unable to get certificate CRL").
  bool check_revocation = true;
  // strong_algorithms refuses what devid does not accept for device identity: MD5 and SHA-1
  // signatures, RSA keys under 2048 bits, EC keys on curves other than P-256 and P-384, and any
  // key type but RSA, EC and Ed25519. Off only for suites of old test data.
  bool strong_algorithms = true;
  // partial_chain lets an anchor be any certificate, not only a self-signed root
  // (X509_V_FLAG_PARTIAL_CHAIN): an enrollment trusts the intermediate or leaf it names.
  bool partial_chain = false;
  // RFC 5280 §6.1.1 policy inputs (c)-(f); an empty initial_policy_set means anyPolicy.
  std::vector<std::string> initial_policy_set;
  bool initial_explicit_policy = false;
  bool initial_policy_mapping_inhibit = false;
  bool initial_inhibit_any_policy = false;
};

// VerifyChain validates leaf with OpenSSL's X509_verify_cert configured as policy says, at time
// at, building the path through untrusted (intermediates the peer sent) to one of anchors, and
// checking revocation against crls (DER). It returns the validated path, leaf first, anchor last.
// Fails with kUnauthenticated naming OpenSSL's reason, the depth and the subject of the
// certificate at fault ("certificate has expired at depth 0 (CN=device-1)"), and with
// kInvalidArgument when a CRL does not parse.
Result<std::vector<Certificate>> VerifyChain(const Certificate& leaf,
                                             std::span<const Certificate> untrusted,
                                             std::span<const Certificate> anchors,
                                             std::span<const std::string> crls,
                                             std::chrono::system_clock::time_point at,
                                             const ChainPolicy& policy);

}  // namespace devid::pki
