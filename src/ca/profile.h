#pragma once

#include <chrono>
#include <string_view>

#include "base/result.h"

namespace devid::ca {

// Profile is a named certificate shape: the extensions and lifetime an Authority applies. The
// caller chooses a profile; the request cannot add or change extensions (policy stays out of the
// signer's callers, as in step-ca's sign options).
struct Profile {
  std::string_view name;
  bool ca = false;
  int path_length = -1;  // basicConstraints pathLenConstraint; -1 = absent
  // key_usage and extended_key_usage are OpenSSL X509V3 configuration values.
  std::string_view key_usage;
  std::string_view extended_key_usage;  // "" = no EKU extension
  std::chrono::hours validity{0};
  bool revocation_pointers = false;  // CRL distribution point + AIA (OCSP, caIssuers)
  bool ocsp_no_check = false;        // id-pkix-ocsp-nocheck, RFC 6960 §4.2.2.2.1
  bool requires_subject_alt_name = false;
  bool requires_common_name = false;
};

// The profiles devid issues under (RFC 5280 §4.2 for each extension):
// "root-ca"          CA:TRUE, keyCertSign + cRLSign, 20 years, self-signed
// "intermediate-ca"  CA:TRUE pathlen 0, keyCertSign + cRLSign, 10 years, CRL DP + AIA
// "device-client"    CA:FALSE, digitalSignature, clientAuth, 1 year, CN = registration ID
// "server"           CA:FALSE, digitalSignature, serverAuth, 1 year, subjectAltName required
// "ocsp-signer"      CA:FALSE, digitalSignature, OCSPSigning, ocsp-nocheck, 90 days
// "command-signer"   CA:FALSE, digitalSignature, kCommandSigningEku only, 1 year
// "token-signer"     CA:FALSE, digitalSignature, kTokenSigningEku only, 1 year
inline constexpr std::string_view kRootCaProfile = "root-ca";
inline constexpr std::string_view kIntermediateCaProfile = "intermediate-ca";
inline constexpr std::string_view kDeviceClientProfile = "device-client";
inline constexpr std::string_view kServerProfile = "server";
inline constexpr std::string_view kOcspSignerProfile = "ocsp-signer";
inline constexpr std::string_view kCommandSignerProfile = "command-signer";
inline constexpr std::string_view kTokenSignerProfile = "token-signer";

// kCommandSigningEku is the extended key usage of devid's command signer (docs/commands.md), an
// OID under the UUID arc 2.25 (ITU-T X.667), which needs no registration. A purpose of its own,
// because the certificate must be good for nothing else: not serverAuth or clientAuth, so a
// stolen command key cannot impersonate the server or a device in TLS, and not codeSigning, so
// it cannot sign firmware that a device trusts.
inline constexpr std::string_view kCommandSigningEku =
    "2.25.192555579891264075518482028177372816587";

// kTokenSigningEku is the extended key usage of devid's peer-token signer (docs/tokens.md), under
// the same arc: a purpose apart from commands, so a token key cannot sign a command and back.
inline constexpr std::string_view kTokenSigningEku =
    "2.25.46322872734222669443364875404402907740";

// FindProfile returns the built-in profile called name (static storage). Fails with
// kInvalidArgument naming the known profiles.
Result<const Profile*> FindProfile(std::string_view name);

}  // namespace devid::ca
