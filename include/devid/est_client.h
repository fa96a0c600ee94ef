#pragma once

// The device SDK's EST client (RFC 7030): the CA certificates, a first certificate for a key the
// device already holds, and the renewal of the certificate it has. Keys stay in their key store:
// requests are signed and TLS client authentication is done through keys::Key.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "devid/credential.h"
#include "keys/key_store.h"
#include "pki/certificate.h"

namespace devid::sdk {

// EstOptions say which EST server to talk to and whom to trust. There is no way to skip server
// authentication: the server's chain must verify to trust_bundle_pem and its certificate must
// name server_name.
struct EstOptions {
  std::string host;  // the EST server's host name or IP address
  uint16_t port = 443;
  std::string server_name;           // the name the server certificate must carry; "" = host
  std::string trust_bundle_pem;      // the only roots the server may chain to (required)
  std::chrono::seconds timeout{30};  // per step of each request
};

// EstClient runs EST operations under /.well-known/est/, one TLS connection per operation. Not
// thread-safe. Every operation fails with kInvalidArgument on missing options; kUnavailable
// when the server cannot be reached or answers 5xx; kUnauthenticated when its certificate is
// rejected or it refuses the device's credential (HTTP 401); kPermissionDenied (403),
// kInvalidArgument (400), kNotFound (404) with the server's own words in the message; and
// kFailedPrecondition when the answer is not what RFC 7030 says it must be.
class EstClient {
 public:
  // EstClient keeps options; nothing is sent until an operation is called.
  explicit EstClient(EstOptions options);

  // CaCerts returns the server's CA certificates (RFC 7030 §4.1), as the server orders them
  // (devid: issuing CAs, newest first, then the roots). They are not verified here: callers use
  // them as untrusted intermediates and anchor trust in their own bundle.
  Result<std::vector<pki::Certificate>> CaCerts();

  // SimpleEnroll asks for a first certificate for key (RFC 7030 §4.2.1), with the subject
  // CN=registration_id, authorized by the device's DPS SAS token sent in Authorization (RFC 7030
  // §3.2.3). The request is signed through key. The answer must certify key's public key for
  // that subject; the certificate is not verified to a trust anchor (callers that keep it do).
  Result<pki::Certificate> SimpleEnroll(const keys::Key& key, std::string_view registration_id,
                                        std::string_view sas_token);

  // SimpleEnroll enrolls as above with the SAS token signed by sas, the device's symmetric key
  // (in memory, in a PKCS #11 token or in a TPM, which computes the HMAC itself), for
  // registration_id in the service's id_scope. Fails with sas's error, else as above.
  Result<pki::Certificate> SimpleEnroll(const keys::Key& key, std::string_view id_scope,
                                        std::string_view registration_id, SasCredential& sas);

  // SimpleReenroll renews current (RFC 7030 §4.2.2): it authenticates with current and
  // current_key as the TLS client certificate and asks for a certificate of current's subject
  // for new_key (current_key itself to keep the key). The answer must certify new_key's public
  // key for exactly current's subject.
  Result<pki::Certificate> SimpleReenroll(const pki::Certificate& current,
                                          std::shared_ptr<const keys::Key> current_key,
                                          const keys::Key& new_key);

 private:
  EstOptions options_;
};

}  // namespace devid::sdk
