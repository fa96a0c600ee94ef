#include "ca/tls_identity.h"

#include "pki/private_key.h"

namespace devid::ca {

Result<IssuedTlsIdentity> IssueTlsIdentity(const Authority& authority, std::string_view profile,
                                           CertificateRequest request) {
  DEVID_ASSIGN_OR_RETURN(pki::PrivateKey key, pki::PrivateKey::GenerateEcP256());
  request.public_key = key.get();
  DEVID_ASSIGN_OR_RETURN(pki::Certificate certificate, authority.Issue(profile, request));
  DEVID_ASSIGN_OR_RETURN(std::string key_pem, key.ToPem());
  TlsIdentity identity{authority.ChainPem(certificate), std::move(key_pem)};
  return IssuedTlsIdentity{std::move(identity), std::move(certificate)};
}

}  // namespace devid::ca
