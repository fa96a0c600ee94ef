#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "ca/authority.h"
#include "pki/certificate.h"

namespace devid::ca {

// TlsIdentity is a certificate chain (leaf first, as PEM) and its private key (PEM), ready for a
// TLS server or client context.
struct TlsIdentity {
  std::string certificate_chain_pem;
  std::string private_key_pem;
};

// IssuedTlsIdentity is a TlsIdentity with the leaf certificate it holds, for the inventory.
struct IssuedTlsIdentity {
  TlsIdentity identity;
  pki::Certificate certificate;
};

// IssueTlsIdentity makes a fresh ECDSA P-256 key, has authority issue a certificate for it under
// profile ("server" or "device-client"; request.public_key is ignored) and returns the chain
// (leaf, then its issuing CA) with the key. The key is generated here because a TLS stack needs it
// in memory; CA keys stay in their key store.
Result<IssuedTlsIdentity> IssueTlsIdentity(const Authority& authority, std::string_view profile,
                                           CertificateRequest request);

}  // namespace devid::ca
