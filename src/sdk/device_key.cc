#include "devid/device_key.h"


#include <cstdlib>
#include <filesystem>

#include "keys/key_store.h"
#include "keys/pkcs11/pkcs11_key_store.h"
#include "keys/software/file_key_store.h"
#include "keys/tpm2/tpm2_key_store.h"
#include "ossl/error.h"
#include "pki/csr.h"

namespace devid::sdk {
namespace {

// KeyStoreTable is the explicit table of the device's key stores, made per key so that a Key
// handed out keeps its own store alive (a Key must not outlive its store).
struct KeyStoreTable {
  explicit KeyStoreTable(const DeviceKeyOptions& options)
      : file(options.getenv ? options.getenv : ProcessEnvironment), pkcs11(options.pkcs11_module) {
    table.Add("file", file);
    table.Add("pkcs11", pkcs11);
    table.Add("tpm2", tpm2);
  }

  static std::optional<std::string> ProcessEnvironment(const std::string& name) {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  }

  keys::FileKeyStore file;
  keys::Pkcs11KeyStore pkcs11;
  keys::Tpm2KeyStore tpm2;  // a tpm2: URI names its TCTI, else tpm2-tss's default
  keys::KeyStores table;
  std::unique_ptr<keys::Key> key;  // last: destroyed before the stores
};

}  // namespace

Result<std::shared_ptr<const keys::Key>> OpenDeviceKey(std::string_view uri,
                                                       const DeviceKeyOptions& options) {
  auto stores = std::make_shared<KeyStoreTable>(options);
  DEVID_ASSIGN_OR_RETURN(stores->key, stores->table.Load(uri));
  const keys::Key* key = stores->key.get();
  // Aliasing: the pointer is the key, the ownership is the whole table.
  return std::shared_ptr<const keys::Key>(std::move(stores), key);
}

Result<std::string> CreateDeviceKey(std::string_view uri, std::string_view algorithm,
                                    const DeviceKeyOptions& options) {
  DEVID_ASSIGN_OR_RETURN(keys::KeyAlgorithm parsed, keys::ParseKeyAlgorithm(algorithm));
  if (parsed != keys::KeyAlgorithm::kEcdsaP256 && parsed != keys::KeyAlgorithm::kEcdsaP384) {
    return std::unexpected(InvalidArgument(
        "a device key must be ecdsa-p256 or ecdsa-p384, the keys that sign TLS handshakes inside "
        "their store; " +
        std::string(algorithm) + " cannot"));
  }
  KeyStoreTable stores(options);
  DEVID_ASSIGN_OR_RETURN(std::unique_ptr<keys::Key> key, stores.table.Create(uri, parsed));
  return key->uri();
}

Status DeleteDeviceKey(std::string_view uri, const DeviceKeyOptions& options) {
  DEVID_ASSIGN_OR_RETURN(keys::KeyUri parsed, keys::ParseKeyUri(uri));
  if (parsed.scheme == "pkcs11") {
    keys::Pkcs11KeyStore store(options.pkcs11_module);
    return store.DeleteKey(parsed);
  }
  if (parsed.scheme == "tpm2") {
    keys::Tpm2KeyStore store;
    return store.DeleteKey(parsed);
  }
  if (parsed.scheme != "file") {
    return std::unexpected(InvalidArgument("cannot delete a " + parsed.scheme + ": key"));
  }
  std::error_code error;
  if (!std::filesystem::remove(parsed.path, error)) {
    if (!error) return std::unexpected(NotFound("deleting key " + parsed.path + ": no such file"));
    return std::unexpected(Unavailable("deleting key " + parsed.path + ": " + error.message()));
  }
  return Ok();
}

Result<std::string> CertificateSigningRequestPem(const keys::Key& key,
                                                 std::string_view common_name) {
  // ub-common-name (RFC 5280 appendix A.1); an X.509 registration ID is the CN (protocol §3).
  if (common_name.empty() || common_name.size() > 64) {
    return std::unexpected(InvalidArgument("the request's common name must be 1-64 characters"));
  }
  ossl::UniquePtr<X509_NAME> subject(X509_NAME_new());
  if (!subject ||
      X509_NAME_add_entry_by_txt(subject.get(), "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.data()),
                                 static_cast<int>(common_name.size()), -1, 0) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("naming a certificate request"));
  }
  DEVID_ASSIGN_OR_RETURN(pki::Csr csr, pki::Csr::Sign(subject.get(), key));
  // The signed bytes as they are, not the request re-encoded from its parsed fields.
  std::string pem = csr.ToPem();
  if (pem.empty()) return std::unexpected(ossl::ErrorFromQueue("encoding a certificate request"));
  return pem;
}

}  // namespace devid::sdk
