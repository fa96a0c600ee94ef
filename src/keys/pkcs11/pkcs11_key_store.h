#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "keys/hmac_key.h"
#include "keys/key_store.h"

namespace devid::keys {

// Pkcs11KeyStore keeps keys in a PKCS #11 token (an HSM, or SoftHSM2 in tests), addressed by
// RFC 7512 URIs: `pkcs11:token=LABEL;object=LABEL[;id=%..]?pin-source=PATH&module-path=PATH`.
//
// It talks to the module through the PKCS #11 C API directly (dlopen + C_GetFunctionList) rather
// than libp11, because devid needs what libp11 hides: the exact key templates (CKA_SENSITIVE true,
// CKA_EXTRACTABLE false), and a pool of sessions per token so that concurrent signatures run on
// separate sessions instead of queueing on one lock.
//
// Every token the store touches is logged in once (CKU_USER, PKCS #11 v2.40 §5.6: the login is
// shared by all of the application's sessions) and keeps its sessions open while the store lives.
// The PIN comes from pin-source (a file path or file: URI whose first line is the PIN) or
// pin-value (RFC 7512 §2.4). Modules are shared process-wide and C_Finalize'd when the last store
// using them is destroyed.
class Pkcs11KeyStore final : public KeyStore, public HmacKeyStore {
 public:
  // Pkcs11KeyStore uses default_module_path for URIs without module-path ("" = every URI must
  // name its module).
  explicit Pkcs11KeyStore(std::string default_module_path);
  ~Pkcs11KeyStore() override;

  // Create generates a key pair on the token: the private key token-resident with CKA_PRIVATE,
  // CKA_SENSITIVE and CKA_SIGN true and CKA_EXTRACTABLE false; the public key with CKA_VERIFY.
  // uri must name the object label (`object=`); `id=` is generated (16 random bytes) when absent,
  // and the returned Key's uri carries it. Fails with kNotFound when no token matches,
  // kAlreadyExists when a private key with that label or id exists, kPermissionDenied on a wrong
  // PIN.
  Result<std::unique_ptr<Key>> Create(const KeyUri& uri, KeyAlgorithm algorithm) override;

  // Load finds the private key (and its public key, by CKA_ID) matching uri's object and id.
  // Fails with kNotFound when no token or key matches and kInvalidArgument when several do.
  Result<std::unique_ptr<Key>> Load(const KeyUri& uri) override;

  // ImportHmacKey creates a token-resident, private CKO_SECRET_KEY (CKK_GENERIC_SECRET) from
  // key's bytes with CKA_SENSITIVE and CKA_SIGN true and CKA_EXTRACTABLE, CKA_VERIFY,
  // CKA_ENCRYPT, CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP and CKA_DERIVE false, so the token only ever
  // computes CKM_SHA256_HMAC with it. uri must name the object label; `id=` is generated when
  // absent, as in Create. Fails as HmacKeyStore says; kInvalidArgument for a key shorter than 32
  // (the SHA-256 output, RFC 2104 §3) or longer than 512 bytes.
  Result<std::unique_ptr<HmacKey>> ImportHmacKey(const KeyUri& uri,
                                                 std::span<const uint8_t> key) override;

  // LoadHmacKey finds the secret key matching uri's object and id; it must allow CKA_SIGN.
  Result<std::unique_ptr<HmacKey>> LoadHmacKey(const KeyUri& uri) override;

  // DeleteKey destroys the key pair matching uri's object and id (C_DestroyObject): the private
  // key first, so that an interrupted call leaves no usable key, then the public keys with its
  // CKA_ID. Keys already loaded from it fail from then on. Fails with kNotFound when no private key
  // matches, kInvalidArgument when several do, else with the token's error.
  Status DeleteKey(const KeyUri& uri);

  // RelabelKey gives the key pair matching uri's object and id the CKA_LABEL label
  // (C_SetAttributeValue), so that a URI naming that label loads it; CKA_ID stays. The public key
  // changes first: the private key matches uri until the end, so an interrupted call can be
  // repeated. Fails with kAlreadyExists when another private key has that label, else as DeleteKey.
  Status RelabelKey(const KeyUri& uri, const std::string& label);

  // OpenSessionCount returns how many PKCS #11 sessions the store holds open over all its tokens
  // (idle in the pools or lent to a signature in progress): a gauge for metrics and tests.
  size_t OpenSessionCount();

  // Token is the implementation's logged-in token with its session pool (defined in the .cc).
  struct Token;

 private:
  Result<std::shared_ptr<Token>> OpenToken(const KeyUri& uri);

  std::string default_module_path_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Token>> tokens_;  // by module path and slot id
};

}  // namespace devid::keys
