#include <openssl/evp.h>
#include <openssl/x509.h>

#include "devid/credential.h"
#include "keys/key_store.h"
#include "pki/certificate.h"

namespace devid::sdk {

Result<X509Credential> X509Credential::Open(std::string certificate_chain_pem,
                                            std::string_view key_uri,
                                            const DeviceKeyOptions& options) {
  auto chain = pki::Certificate::AllFromPem(certificate_chain_pem);
  if (!chain) {
    return std::unexpected(
        InvalidArgument("the device certificate chain does not parse: " + chain.error().message()));
  }
  DEVID_ASSIGN_OR_RETURN(std::shared_ptr<const keys::Key> key, OpenDeviceKey(key_uri, options));
  const pki::Certificate& leaf = chain->front();
  // The TLS handshake would fail later with an opaque error; say which two do not belong.
  if (EVP_PKEY_eq(X509_get0_pubkey(leaf.get()), key->public_key()) != 1) {
    return std::unexpected(InvalidArgument("the device certificate (" + leaf.SubjectName() +
                                           ") does not certify key " + key->uri() +
                                           ": its public key is another one"));
  }
  return X509Credential(std::move(certificate_chain_pem), leaf.SubjectCommonName(), std::move(key));
}

}  // namespace devid::sdk
