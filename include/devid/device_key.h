#pragma once

// The device SDK's signing keys: a device's private key made and used inside a key store (an
// encrypted file, a PKCS #11 token or a TPM), addressed by URI, so the application never sees key
// bytes.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace devid::keys {
class Key;
}  // namespace devid::keys

namespace devid::sdk {

// DeviceKeyOptions say how the SDK reaches the key stores a key URI names:
//   file:PATH?passphrase-env=NAME | passphrase-file=PATH   (encrypted PKCS #8, mode 0600)
//   pkcs11:token=T;object=O?pin-source=FILE[&module-path=LIB]   (RFC 7512)
//   tpm2:handle=0x81000010[?tcti=swtpm:host=H,port=P]   (a persistent key inside a TPM 2.0)
struct DeviceKeyOptions {
  // pkcs11_module is the PKCS #11 library for pkcs11: URIs without module-path.
  std::string pkcs11_module;
  // getenv resolves passphrase-env=NAME; empty = the process environment.
  std::function<std::optional<std::string>(const std::string& name)> getenv;
};

// OpenDeviceKey loads the private key at uri. The returned Key signs inside its store and keeps
// the store open for as long as any copy of it lives. Fails with kInvalidArgument for a malformed
// URI or a scheme other than file, pkcs11 and tpm2, kNotFound when the file, token or key is
// missing, kPermissionDenied on a wrong passphrase or PIN, kUnavailable when a TPM is unreachable.
Result<std::shared_ptr<const keys::Key>> OpenDeviceKey(std::string_view uri,
                                                       const DeviceKeyOptions& options = {});

// CreateDeviceKey makes a new key of algorithm ("ecdsa-p256" or "ecdsa-p384": the keys that can
// sign TLS handshakes through their store) at uri and returns its URI as the store records it (a
// token key's generated id added, secrets redacted). Fails with kAlreadyExists when uri names a
// key already, kInvalidArgument for another algorithm, else as OpenDeviceKey.
Result<std::string> CreateDeviceKey(std::string_view uri, std::string_view algorithm = "ecdsa-p256",
                                    const DeviceKeyOptions& options = {});

// DeleteDeviceKey deletes the key at uri: the file, the token's key pair, or the TPM's key. Fails
// with kNotFound when there is none, kInvalidArgument for a malformed URI, else with the store's
// error.
Status DeleteDeviceKey(std::string_view uri, const DeviceKeyOptions& options = {});

// CertificateSigningRequestPem returns a PEM PKCS #10 request (RFC 2986) for subject
// CN=common_name and key's public key, signed through key, as `devid ca issue`, EST and a
// registration's csr take it. Fails with kInvalidArgument for an empty or over-long common_name,
// else with the key's error.
Result<std::string> CertificateSigningRequestPem(const keys::Key& key,
                                                 std::string_view common_name);

}  // namespace devid::sdk
