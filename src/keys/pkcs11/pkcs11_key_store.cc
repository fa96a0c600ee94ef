#include "keys/pkcs11/pkcs11_key_store.h"

#include <dlfcn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <p11-kit/pkcs11.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <unordered_map>
#include <vector>

#include "keys/secret.h"
#include "ossl/error.h"

namespace devid::keys {
namespace {

// DER OBJECT IDENTIFIERs for CKA_EC_PARAMS (RFC 5480 §2.1.1.1, RFC 8410 §3).
constexpr uint8_t kP256Oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
constexpr uint8_t kP384Oid[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
constexpr uint8_t kEd25519Oid[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
// PKCS #11 v3.0 §2.3.10 also allows the curve name as a PrintableString.
constexpr std::string_view kEd25519Name =
    "\x13\x0c"
    "edwards25519";

constexpr size_t kMaxIdleSessions = 32;

std::string RvName(CK_RV rv) {
  switch (rv) {
    case CKR_PIN_INCORRECT:
      return "CKR_PIN_INCORRECT";
    case CKR_PIN_LOCKED:
      return "CKR_PIN_LOCKED";
    case CKR_TOKEN_NOT_PRESENT:
      return "CKR_TOKEN_NOT_PRESENT";
    case CKR_DEVICE_REMOVED:
      return "CKR_DEVICE_REMOVED";
    case CKR_DEVICE_ERROR:
      return "CKR_DEVICE_ERROR";
    case CKR_MECHANISM_INVALID:
      return "CKR_MECHANISM_INVALID";
    case CKR_TEMPLATE_INCONSISTENT:
      return "CKR_TEMPLATE_INCONSISTENT";
    case CKR_ATTRIBUTE_VALUE_INVALID:
      return "CKR_ATTRIBUTE_VALUE_INVALID";
    case CKR_USER_NOT_LOGGED_IN:
      return "CKR_USER_NOT_LOGGED_IN";
    case CKR_SESSION_HANDLE_INVALID:
      return "CKR_SESSION_HANDLE_INVALID";
    case CKR_KEY_HANDLE_INVALID:
      return "CKR_KEY_HANDLE_INVALID";
    case CKR_OBJECT_HANDLE_INVALID:
      return "CKR_OBJECT_HANDLE_INVALID";
    case CKR_GENERAL_ERROR:
      return "CKR_GENERAL_ERROR";
    case CKR_KEY_SIZE_RANGE:
      return "CKR_KEY_SIZE_RANGE";
    case CKR_FUNCTION_FAILED:
      return "CKR_FUNCTION_FAILED";
    default:
      break;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "CKR 0x%lx", static_cast<unsigned long>(rv));
  return buf;
}

Error Pkcs11Error(std::string_view doing, CK_RV rv) {
  ErrorCode code = ErrorCode::kInternal;
  if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED) code = ErrorCode::kPermissionDenied;
  if (rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_REMOVED || rv == CKR_DEVICE_ERROR) {
    code = ErrorCode::kUnavailable;
  }
  return Error(code, std::string(doing) + ": " + RvName(rv));
}

// Module is one loaded, C_Initialize'd PKCS #11 library. Shared by every store in the process:
// a module may be initialized only once per process (PKCS #11 v2.40 §5.4).
class Module {
 public:
  static Result<std::shared_ptr<Module>> Get(const std::string& path) {
    static std::mutex mu;
    static std::map<std::string, std::weak_ptr<Module>> modules;
    std::lock_guard lock(mu);
    if (auto existing = modules[path].lock()) return existing;
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      return std::unexpected(NotFound("loading PKCS #11 module " + path + ": " + ::dlerror()));
    }
    auto get_list = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(handle, "C_GetFunctionList"));
    CK_FUNCTION_LIST_PTR functions = nullptr;
    if (get_list == nullptr || get_list(&functions) != CKR_OK || functions == nullptr) {
      ::dlclose(handle);
      return std::unexpected(
          InvalidArgument("PKCS #11 module " + path + " has no usable C_GetFunctionList"));
    }
    // CKF_OS_LOCKING_OK: we call from many threads and the module may use the OS's mutexes.
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = functions->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      ::dlclose(handle);
      return std::unexpected(Pkcs11Error("initializing PKCS #11 module " + path, rv));
    }
    auto module =
        std::shared_ptr<Module>(new Module(handle, functions, /*finalize=*/rv == CKR_OK, path));
    modules[path] = module;
    return module;
  }

  ~Module() {
    if (finalize_) f->C_Finalize(nullptr);
    ::dlclose(handle_);
  }

  CK_FUNCTION_LIST_PTR const f;
  const std::string path;

 private:
  Module(void* handle, CK_FUNCTION_LIST_PTR functions, bool finalize, std::string module_path)
      : f(functions), path(std::move(module_path)), handle_(handle), finalize_(finalize) {}
  void* handle_;
  bool finalize_;
};

std::string Trimmed(const unsigned char* field, size_t size) {
  std::string s(reinterpret_cast<const char*>(field), size);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

Result<Secret> ReadPin(const KeyUri& uri) {
  if (auto value = uri.QueryAttribute("pin-value")) return Secret(*value);
  if (auto source = uri.QueryAttribute("pin-source")) {
    std::string path = *source;
    if (path.starts_with("file:")) {
      DEVID_ASSIGN_OR_RETURN(KeyUri file, ParseKeyUri(path));
      path = file.path;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::unexpected(NotFound("reading PIN file " + path));
    std::string line;
    std::getline(in, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    Secret pin(line);
    OPENSSL_cleanse(line.data(), line.size());
    return pin;
  }
  return std::unexpected(
      InvalidArgument("key " + uri.ToString() + ": name the token PIN with pin-source"));
}

}  // namespace

// Token is one logged-in token and its pool of open sessions. Each pooled session caches the
// object handles it has looked up (object handles belong to their session).
struct Pkcs11KeyStore::Token {
  struct Session {
    CK_SESSION_HANDLE handle = CK_INVALID_HANDLE;
    std::unordered_map<std::string, CK_OBJECT_HANDLE> private_keys;  // by CKA_ID
    std::unordered_map<std::string, CK_OBJECT_HANDLE> secret_keys;   // by CKA_ID
  };

  // Lease borrows a session; it returns to the pool when the Lease is destroyed unless broken.
  class Lease {
   public:
    Lease(Token* token, std::unique_ptr<Session> session)
        : token_(token), session_(std::move(session)) {}
    Lease(Lease&&) = default;
    ~Lease() {
      if (session_) token_->Release(std::move(session_), broken_);
    }
    Session* operator->() const { return session_.get(); }
    CK_SESSION_HANDLE handle() const { return session_->handle; }
    void MarkBroken() { broken_ = true; }

   private:
    Token* token_;
    std::unique_ptr<Session> session_;
    bool broken_ = false;
  };

  Token(std::shared_ptr<Module> m, CK_SLOT_ID s, std::string d)
      : module(std::move(m)), slot(s), description(std::move(d)) {}
  ~Token() {
    for (auto& session : idle) module->f->C_CloseSession(session->handle);
  }

  // Acquire lends an idle session or opens one, logging in again first when the token lost its
  // login (all its sessions were closed, PKCS #11 v2.40 §5.6).
  Result<Lease> Acquire() {
    if (!logged_in) DEVID_TRY(Login());
    return AcquireSession();
  }

  Result<Lease> AcquireSession() {
    {
      std::lock_guard lock(mu);
      if (!idle.empty()) {
        std::unique_ptr<Session> session = std::move(idle.back());
        idle.pop_back();
        return Lease(this, std::move(session));
      }
    }
    auto session = std::make_unique<Session>();
    CK_RV rv = module->f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr,
                                        &session->handle);
    if (rv != CKR_OK)
      return std::unexpected(Pkcs11Error("opening a session on " + description, rv));
    ++open_sessions;
    return Lease(this, std::move(session));
  }

  void Release(std::unique_ptr<Session> session, bool broken) {
    std::lock_guard lock(mu);
    if (!broken && idle.size() < kMaxIdleSessions) {
      idle.push_back(std::move(session));
      return;
    }
    module->f->C_CloseSession(session->handle);
    --open_sessions;
    // Closing the last open session logs the token out; the next Acquire logs in again.
    if (open_sessions == 0) logged_in = false;
  }

  // Login logs in with pin, or with the PIN remembered from the first login when pin is null.
  Status Login(const Secret* new_pin = nullptr) {
    std::lock_guard login_lock(login_mu);
    if (new_pin != nullptr && pin.empty()) pin.Assign(new_pin->value());
    if (logged_in) return Ok();
    DEVID_ASSIGN_OR_RETURN(Lease lease, AcquireSession());
    CK_RV rv =
        module->f->C_Login(lease.handle(), CKU_USER,
                           reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(pin.value().data())),
                           pin.value().size());
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
      if (new_pin != nullptr) pin.Clear();
      return std::unexpected(Pkcs11Error("logging in to " + description, rv));
    }
    logged_in = true;
    return Ok();
  }

  std::shared_ptr<Module> module;
  CK_SLOT_ID slot;
  std::string description;  // "pkcs11:token=..." for messages
  std::mutex login_mu;
  Secret pin;  // kept to log in again after the token dropped its login
  std::atomic<bool> logged_in = false;
  std::mutex mu;
  std::vector<std::unique_ptr<Session>> idle;
  std::atomic<size_t> open_sessions = 0;
};

namespace {

using Token = Pkcs11KeyStore::Token;

Result<std::vector<CK_OBJECT_HANDLE>> FindObjects(Token& token, CK_SESSION_HANDLE session,
                                                  CK_OBJECT_CLASS klass, const std::string* label,
                                                  const std::string* id) {
  std::vector<CK_ATTRIBUTE> query = {{CKA_CLASS, &klass, sizeof(klass)}};
  if (label) query.push_back({CKA_LABEL, const_cast<char*>(label->data()), label->size()});
  if (id) query.push_back({CKA_ID, const_cast<char*>(id->data()), id->size()});
  CK_FUNCTION_LIST_PTR f = token.module->f;
  CK_RV rv = f->C_FindObjectsInit(session, query.data(), query.size());
  if (rv != CKR_OK) return std::unexpected(Pkcs11Error("searching " + token.description, rv));
  std::vector<CK_OBJECT_HANDLE> found;
  CK_OBJECT_HANDLE batch[16];
  CK_ULONG count = 0;
  while ((rv = f->C_FindObjects(session, batch, 16, &count)) == CKR_OK && count > 0) {
    found.insert(found.end(), batch, batch + count);
  }
  f->C_FindObjectsFinal(session);
  if (rv != CKR_OK) return std::unexpected(Pkcs11Error("searching " + token.description, rv));
  return found;
}

// RequireKeyName refuses a uri that names no key, before any token is opened for it.
Status RequireKeyName(const KeyUri& uri) {
  if (!uri.PathAttribute("object") && !uri.PathAttribute("id")) {
    return std::unexpected(
        InvalidArgument("key " + uri.ToString() + ": name the key with object= or id="));
  }
  return Ok();
}

// FindOneObject returns the one object of klass (a key of kind, for messages) that uri's object=
// and id= name.
Result<CK_OBJECT_HANDLE> FindOneObject(Token& token, CK_SESSION_HANDLE session, const KeyUri& uri,
                                       CK_OBJECT_CLASS klass, std::string_view kind) {
  DEVID_TRY(RequireKeyName(uri));
  std::optional<std::string> label = uri.PathAttribute("object");
  std::optional<std::string> wanted_id = uri.PathAttribute("id");
  DEVID_ASSIGN_OR_RETURN(auto found, FindObjects(token, session, klass, label ? &*label : nullptr,
                                                 wanted_id ? &*wanted_id : nullptr));
  if (found.empty()) {
    return std::unexpected(NotFound("no " + std::string(kind) + " matches " + uri.ToString()));
  }
  if (found.size() > 1) {
    return std::unexpected(InvalidArgument(std::to_string(found.size()) + " " + std::string(kind) +
                                           "s match " + uri.ToString()));
  }
  return found[0];
}

// KeyIdOf returns uri's `id=`, or 16 random bytes recorded in named when uri has none.
Result<std::string> KeyIdOf(const KeyUri& uri, KeyUri& named) {
  std::string id = uri.PathAttribute("id").value_or("");
  if (id.empty()) {
    id.resize(16);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(id.data()), 16) != 1) {
      return std::unexpected(ossl::ErrorFromQueue("making a key id"));
    }
    named.path_attributes["id"] = id;
  }
  return id;
}

Result<std::string> GetAttribute(Token& token, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                                 CK_ATTRIBUTE_TYPE type) {
  CK_ATTRIBUTE attribute = {type, nullptr, 0};
  CK_RV rv = token.module->f->C_GetAttributeValue(session, object, &attribute, 1);
  if (rv != CKR_OK || attribute.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
    return std::unexpected(Pkcs11Error("reading a key attribute on " + token.description, rv));
  }
  std::string value(attribute.ulValueLen, '\0');
  attribute.pValue = value.data();
  rv = token.module->f->C_GetAttributeValue(session, object, &attribute, 1);
  if (rv != CKR_OK) {
    return std::unexpected(Pkcs11Error("reading a key attribute on " + token.description, rv));
  }
  value.resize(attribute.ulValueLen);
  return value;
}

// EcPoint unwraps CKA_EC_POINT: a DER OCTET STRING (PKCS #11 v2.40 §2.3.3), or the raw point
// from modules that skip the wrapping.
std::string EcPoint(const std::string& attribute) {
  const auto* p = reinterpret_cast<const unsigned char*>(attribute.data());
  ASN1_OCTET_STRING* octets = d2i_ASN1_OCTET_STRING(nullptr, &p, attribute.size());
  if (octets == nullptr) {
    ERR_clear_error();
    return attribute;
  }
  std::string point(reinterpret_cast<const char*>(ASN1_STRING_get0_data(octets)),
                    ASN1_STRING_length(octets));
  ASN1_OCTET_STRING_free(octets);
  return point;
}

Result<ossl::UniquePtr<EVP_PKEY>> PublicKeyFromToken(Token& token, CK_SESSION_HANDLE session,
                                                     CK_OBJECT_HANDLE object,
                                                     KeyAlgorithm algorithm) {
  ossl::UniquePtr<EVP_PKEY> key;
  if (algorithm == KeyAlgorithm::kEd25519) {
    DEVID_ASSIGN_OR_RETURN(std::string raw, GetAttribute(token, session, object, CKA_EC_POINT));
    std::string point = EcPoint(raw);
    key.reset(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                          reinterpret_cast<const unsigned char*>(point.data()),
                                          point.size()));
  } else {
    ossl::UniquePtr<OSSL_PARAM_BLD> build(OSSL_PARAM_BLD_new());
    ossl::UniquePtr<BIGNUM> n, e;
    std::string point;
    const char* type = "EC";
    if (algorithm == KeyAlgorithm::kRsa3072) {
      type = "RSA";
      DEVID_ASSIGN_OR_RETURN(std::string modulus,
                             GetAttribute(token, session, object, CKA_MODULUS));
      DEVID_ASSIGN_OR_RETURN(std::string exponent,
                             GetAttribute(token, session, object, CKA_PUBLIC_EXPONENT));
      n.reset(BN_bin2bn(reinterpret_cast<const unsigned char*>(modulus.data()),
                        static_cast<int>(modulus.size()), nullptr));
      e.reset(BN_bin2bn(reinterpret_cast<const unsigned char*>(exponent.data()),
                        static_cast<int>(exponent.size()), nullptr));
      if (!build || !n || !e ||
          OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
          OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
        return std::unexpected(ossl::ErrorFromQueue("building an RSA public key"));
      }
    } else {
      DEVID_ASSIGN_OR_RETURN(std::string raw, GetAttribute(token, session, object, CKA_EC_POINT));
      point = EcPoint(raw);
      const char* group = algorithm == KeyAlgorithm::kEcdsaP256 ? "P-256" : "P-384";
      if (!build ||
          OSSL_PARAM_BLD_push_utf8_string(build.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
          OSSL_PARAM_BLD_push_octet_string(build.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                           point.size()) != 1) {
        return std::unexpected(ossl::ErrorFromQueue("building an EC public key"));
      }
    }
    ossl::UniquePtr<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(build.get()));
    ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    EVP_PKEY* raw_key = nullptr;
    if (params && ctx && EVP_PKEY_fromdata_init(ctx.get()) == 1) {
      EVP_PKEY_fromdata(ctx.get(), &raw_key, EVP_PKEY_PUBLIC_KEY, params.get());
    }
    key.reset(raw_key);
  }
  if (!key) return std::unexpected(ossl::ErrorFromQueue("reading the public key from the token"));
  // Confirms the token's key is what CKA_EC_PARAMS / CKA_MODULUS said (e.g. 3072 bits).
  DEVID_ASSIGN_OR_RETURN(KeyAlgorithm actual, AlgorithmOfPublicKey(key.get()));
  if (actual != algorithm)
    return std::unexpected(InvalidArgument("token key has an unexpected size"));
  return key;
}

Result<KeyAlgorithm> AlgorithmOfTokenKey(Token& token, CK_SESSION_HANDLE session,
                                         CK_OBJECT_HANDLE public_key) {
  DEVID_ASSIGN_OR_RETURN(std::string type_bytes,
                         GetAttribute(token, session, public_key, CKA_KEY_TYPE));
  CK_KEY_TYPE type = 0;
  std::memcpy(&type, type_bytes.data(), std::min(type_bytes.size(), sizeof(type)));
  if (type == CKK_RSA) return KeyAlgorithm::kRsa3072;  // checked against the modulus later
  if (type != CKK_EC && type != CKK_EC_EDWARDS) {
    return std::unexpected(InvalidArgument("token key type is not EC, EdDSA or RSA"));
  }
  DEVID_ASSIGN_OR_RETURN(std::string params,
                         GetAttribute(token, session, public_key, CKA_EC_PARAMS));
  auto is = [&](auto& oid) {
    return params == std::string_view(reinterpret_cast<const char*>(oid), sizeof(oid));
  };
  if (is(kP256Oid)) return KeyAlgorithm::kEcdsaP256;
  if (is(kP384Oid)) return KeyAlgorithm::kEcdsaP384;
  if (is(kEd25519Oid) || params == kEd25519Name) return KeyAlgorithm::kEd25519;
  return std::unexpected(InvalidArgument("token key is on an unsupported curve"));
}

class Pkcs11Key final : public Key {
 public:
  Pkcs11Key(std::string uri, KeyAlgorithm algorithm, ossl::UniquePtr<EVP_PKEY> public_key,
            std::shared_ptr<Token> token, std::string id)
      : Key(std::move(uri), algorithm, std::move(public_key)),
        token_(std::move(token)),
        id_(std::move(id)) {}

  Result<std::vector<uint8_t>> Sign(std::span<const uint8_t> message) const override {
    // The token signs; hashing happens here for ECDSA (CKM_ECDSA takes the digest, PKCS #11
    // v2.40 §2.3.6), which keeps the message off the bus. RSA and EdDSA hash inside.
    if (algorithm() == KeyAlgorithm::kEcdsaP256 || algorithm() == KeyAlgorithm::kEcdsaP384) {
      unsigned char digest[EVP_MAX_MD_SIZE];
      unsigned int digest_len = 0;
      if (EVP_Digest(message.data(), message.size(), digest, &digest_len,
                     SignatureDigest(algorithm()), nullptr) != 1) {
        return std::unexpected(ossl::ErrorFromQueue("hashing for " + uri()));
      }
      return SignDigest(std::span<const uint8_t>(digest, digest_len));
    }
    return TokenSign(algorithm() == KeyAlgorithm::kRsa3072 ? CKM_SHA256_RSA_PKCS : CKM_EDDSA,
                     message);
  }

  Result<std::vector<uint8_t>> SignDigest(std::span<const uint8_t> digest) const override {
    DEVID_TRY(CheckSignsDigests(*this));
    DEVID_ASSIGN_OR_RETURN(std::vector<uint8_t> signature, TokenSign(CKM_ECDSA, digest));
    // CKM_ECDSA returns r || s; X.509 and TLS carry a DER ECDSA-Sig-Value (RFC 3279 §2.2.3).
    size_t half = signature.size() / 2;
    ECDSA_SIG* sig = ECDSA_SIG_new();
    BIGNUM* r = BN_bin2bn(signature.data(), static_cast<int>(half), nullptr);
    BIGNUM* s = BN_bin2bn(signature.data() + half, static_cast<int>(half), nullptr);
    if (sig == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
      BN_free(r);
      BN_free(s);
      ECDSA_SIG_free(sig);
      return std::unexpected(ossl::ErrorFromQueue("encoding an ECDSA signature"));
    }
    // sig takes ownership of r and s.
    unsigned char* der = nullptr;
    int der_len = i2d_ECDSA_SIG(sig, &der);
    ECDSA_SIG_free(sig);
    if (der_len <= 0) return std::unexpected(ossl::ErrorFromQueue("encoding an ECDSA signature"));
    std::vector<uint8_t> out(der, der + der_len);
    OPENSSL_free(der);
    return out;
  }

 private:
  // TokenSign runs C_Sign with mechanism over input on a pooled session.
  Result<std::vector<uint8_t>> TokenSign(CK_MECHANISM_TYPE type,
                                         std::span<const uint8_t> input) const {
    DEVID_ASSIGN_OR_RETURN(Token::Lease lease, token_->Acquire());
    CK_OBJECT_HANDLE object = CK_INVALID_HANDLE;
    if (auto it = lease->private_keys.find(id_); it != lease->private_keys.end()) {
      object = it->second;
    } else {
      auto found = FindObjects(*token_, lease.handle(), CKO_PRIVATE_KEY, nullptr, &id_);
      if (!found) return std::unexpected(found.error());
      if (found->size() != 1) {
        return std::unexpected(NotFound("signing with " + uri() + ": the key is gone"));
      }
      object = lease->private_keys[id_] = found->front();
    }
    CK_MECHANISM mechanism = {type, nullptr, 0};
    CK_FUNCTION_LIST_PTR f = token_->module->f;
    std::vector<uint8_t> signature(512);
    CK_ULONG len = signature.size();
    CK_RV rv = f->C_SignInit(lease.handle(), &mechanism, object);
    if (rv == CKR_OK) {
      rv = f->C_Sign(lease.handle(), const_cast<uint8_t*>(input.data()), input.size(),
                     signature.data(), &len);
    }
    if (rv != CKR_OK) {
      lease.MarkBroken();
      return std::unexpected(Pkcs11Error("signing with " + uri(), rv));
    }
    signature.resize(len);
    return signature;
  }

  std::shared_ptr<Token> token_;
  std::string id_;
};

// Pkcs11HmacKey is a CKO_SECRET_KEY that the token uses with CKM_SHA256_HMAC (PKCS #11 v2.40
// §2.20.4, a 32-byte MAC); the key bytes never come back out.
class Pkcs11HmacKey final : public HmacKey {
 public:
  Pkcs11HmacKey(std::string uri, std::shared_ptr<Token> token, std::string id)
      : HmacKey(std::move(uri)), token_(std::move(token)), id_(std::move(id)) {}

  Result<std::array<uint8_t, 32>> HmacSha256(std::string_view message) const override {
    DEVID_ASSIGN_OR_RETURN(Token::Lease lease, token_->Acquire());
    CK_OBJECT_HANDLE object = CK_INVALID_HANDLE;
    if (auto it = lease->secret_keys.find(id_); it != lease->secret_keys.end()) {
      object = it->second;
    } else {
      DEVID_ASSIGN_OR_RETURN(auto found,
                             FindObjects(*token_, lease.handle(), CKO_SECRET_KEY, nullptr, &id_));
      if (found.size() != 1) {
        return std::unexpected(NotFound("computing an HMAC with " + uri() + ": the key is gone"));
      }
      object = lease->secret_keys[id_] = found.front();
    }
    CK_MECHANISM mechanism = {CKM_SHA256_HMAC, nullptr, 0};
    std::array<uint8_t, 32> mac{};
    CK_ULONG len = mac.size();
    CK_FUNCTION_LIST_PTR f = token_->module->f;
    CK_RV rv = f->C_SignInit(lease.handle(), &mechanism, object);
    if (rv == CKR_OK) {
      rv = f->C_Sign(lease.handle(),
                     reinterpret_cast<CK_BYTE_PTR>(const_cast<char*>(message.data())),
                     message.size(), mac.data(), &len);
    }
    if (rv != CKR_OK) {
      // A stale cached handle (key deleted) or a half-finished operation: start afresh.
      lease.MarkBroken();
      return std::unexpected(Pkcs11Error("computing an HMAC with " + uri(), rv));
    }
    if (len != mac.size()) {
      return std::unexpected(Internal("computing an HMAC with " + uri() + ": the token returned " +
                                      std::to_string(len) + " bytes, not 32"));
    }
    return mac;
  }

 private:
  std::shared_ptr<Token> token_;
  std::string id_;
};

}  // namespace

Pkcs11KeyStore::Pkcs11KeyStore(std::string default_module_path)
    : default_module_path_(std::move(default_module_path)) {}

Pkcs11KeyStore::~Pkcs11KeyStore() = default;

size_t Pkcs11KeyStore::OpenSessionCount() {
  std::lock_guard lock(mu_);
  size_t count = 0;
  for (const auto& [unused, token] : tokens_) count += token->open_sessions;
  return count;
}

Result<std::shared_ptr<Pkcs11KeyStore::Token>> Pkcs11KeyStore::OpenToken(const KeyUri& uri) {
  if (uri.scheme != "pkcs11") return std::unexpected(InvalidArgument("not a pkcs11: URI"));
  std::string module_path = uri.QueryAttribute("module-path").value_or(default_module_path_);
  if (module_path.empty()) {
    return std::unexpected(InvalidArgument("key " + uri.ToString() +
                                           ": no module-path and no default PKCS #11 module"));
  }
  DEVID_ASSIGN_OR_RETURN(std::shared_ptr<Module> module, Module::Get(module_path));

  CK_ULONG count = 0;
  CK_RV rv = module->f->C_GetSlotList(CK_TRUE, nullptr, &count);
  std::vector<CK_SLOT_ID> slots(count);
  if (rv == CKR_OK && count > 0) rv = module->f->C_GetSlotList(CK_TRUE, slots.data(), &count);
  if (rv != CKR_OK) return std::unexpected(Pkcs11Error("listing slots of " + module_path, rv));
  slots.resize(count);

  std::vector<CK_SLOT_ID> matches;
  for (CK_SLOT_ID slot : slots) {
    CK_TOKEN_INFO info{};
    if (module->f->C_GetTokenInfo(slot, &info) != CKR_OK) continue;
    if (!(info.flags & CKF_TOKEN_INITIALIZED)) continue;
    // RFC 7512 §2.3: every attribute present must match; absent ones match anything.
    auto matches_attr = [&](std::string_view name, const std::string& value) {
      auto wanted = uri.PathAttribute(name);
      return !wanted || *wanted == value;
    };
    if (matches_attr("token", Trimmed(info.label, sizeof(info.label))) &&
        matches_attr("manufacturer", Trimmed(info.manufacturerID, sizeof(info.manufacturerID))) &&
        matches_attr("model", Trimmed(info.model, sizeof(info.model))) &&
        matches_attr("serial", Trimmed(info.serialNumber, sizeof(info.serialNumber))) &&
        matches_attr("slot-id", std::to_string(slot))) {
      matches.push_back(slot);
    }
  }
  if (matches.empty()) {
    return std::unexpected(NotFound("no PKCS #11 token matches " + uri.ToString()));
  }
  if (matches.size() > 1) {
    return std::unexpected(InvalidArgument(std::to_string(matches.size()) +
                                           " PKCS #11 tokens match " + uri.ToString() +
                                           "; add serial= to choose one"));
  }

  std::string key = module_path + "\n" + std::to_string(matches.front());
  std::shared_ptr<Token> token;
  {
    std::lock_guard lock(mu_);
    std::shared_ptr<Token>& slot_token = tokens_[key];
    if (!slot_token) {
      slot_token = std::make_shared<Token>(
          module, matches.front(), "pkcs11:token=" + uri.PathAttribute("token").value_or(""));
    }
    token = slot_token;
  }
  if (!token->logged_in) {
    DEVID_ASSIGN_OR_RETURN(Secret pin, ReadPin(uri));
    DEVID_TRY(token->Login(&pin));
  }
  return token;
}

Result<std::unique_ptr<Key>> Pkcs11KeyStore::Create(const KeyUri& uri, KeyAlgorithm algorithm) {
  std::optional<std::string> label = uri.PathAttribute("object");
  if (!label || label->empty()) {
    return std::unexpected(
        InvalidArgument("key " + uri.ToString() + ": name the key with object="));
  }
  DEVID_ASSIGN_OR_RETURN(std::shared_ptr<Token> token, OpenToken(uri));
  KeyUri named = uri;
  DEVID_ASSIGN_OR_RETURN(std::string id, KeyIdOf(uri, named));
  named.path_attributes.erase("type");
  DEVID_ASSIGN_OR_RETURN(Token::Lease lease, token->Acquire());
  DEVID_ASSIGN_OR_RETURN(auto by_label,
                         FindObjects(*token, lease.handle(), CKO_PRIVATE_KEY, &*label, nullptr));
  DEVID_ASSIGN_OR_RETURN(auto by_id,
                         FindObjects(*token, lease.handle(), CKO_PRIVATE_KEY, nullptr, &id));
  if (!by_label.empty() || !by_id.empty()) {
    return std::unexpected(AlreadyExists("key " + named.ToString() + " already exists"));
  }

  CK_BBOOL yes = CK_TRUE;
  CK_BBOOL no = CK_FALSE;
  CK_ULONG modulus_bits = 3072;
  uint8_t exponent[] = {0x01, 0x00, 0x01};
  CK_MECHANISM mechanism = {CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  std::vector<CK_ATTRIBUTE> pub = {
      {CKA_TOKEN, &yes, sizeof(yes)},
      {CKA_VERIFY, &yes, sizeof(yes)},
      {CKA_LABEL, label->data(), label->size()},
      {CKA_ID, id.data(), id.size()},
  };
  auto add_params = [&](const uint8_t* oid, size_t size) {
    pub.push_back({CKA_EC_PARAMS, const_cast<uint8_t*>(oid), size});
  };
  switch (algorithm) {
    case KeyAlgorithm::kEcdsaP256:
      add_params(kP256Oid, sizeof(kP256Oid));
      break;
    case KeyAlgorithm::kEcdsaP384:
      add_params(kP384Oid, sizeof(kP384Oid));
      break;
    case KeyAlgorithm::kEd25519:
      mechanism.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
      add_params(kEd25519Oid, sizeof(kEd25519Oid));
      break;
    case KeyAlgorithm::kRsa3072:
      mechanism.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
      pub.push_back({CKA_MODULUS_BITS, &modulus_bits, sizeof(modulus_bits)});
      pub.push_back({CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent)});
      break;
  }
  // The private key never leaves the token: sensitive (no plaintext read) and not extractable
  // (no wrapping), PKCS #11 v2.40 §4.9. It signs and does nothing else (least privilege): no
  // decryption, unwrapping or key derivation with a CA key.
  std::vector<CK_ATTRIBUTE> priv = {
      {CKA_TOKEN, &yes, sizeof(yes)},     {CKA_PRIVATE, &yes, sizeof(yes)},
      {CKA_SENSITIVE, &yes, sizeof(yes)}, {CKA_EXTRACTABLE, &no, sizeof(no)},
      {CKA_SIGN, &yes, sizeof(yes)},      {CKA_DECRYPT, &no, sizeof(no)},
      {CKA_UNWRAP, &no, sizeof(no)},      {CKA_DERIVE, &no, sizeof(no)},
      {CKA_LABEL, label->data(), label->size()},
      {CKA_ID, id.data(), id.size()},
  };
  CK_OBJECT_HANDLE public_handle = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE private_handle = CK_INVALID_HANDLE;
  CK_RV rv = token->module->f->C_GenerateKeyPair(lease.handle(), &mechanism, pub.data(), pub.size(),
                                                 priv.data(), priv.size(), &public_handle,
                                                 &private_handle);
  if (rv != CKR_OK) {
    return std::unexpected(Pkcs11Error(
        "generating " + std::string(KeyAlgorithmName(algorithm)) + " key " + named.ToString(), rv));
  }
  DEVID_ASSIGN_OR_RETURN(ossl::UniquePtr<EVP_PKEY> public_key,
                         PublicKeyFromToken(*token, lease.handle(), public_handle, algorithm));
  lease->private_keys[id] = private_handle;
  return std::make_unique<Pkcs11Key>(named.ToString(), algorithm, std::move(public_key),
                                     std::move(token), id);
}

Result<std::unique_ptr<Key>> Pkcs11KeyStore::Load(const KeyUri& uri) {
  DEVID_TRY(RequireKeyName(uri));
  DEVID_ASSIGN_OR_RETURN(std::shared_ptr<Token> token, OpenToken(uri));
  DEVID_ASSIGN_OR_RETURN(Token::Lease lease, token->Acquire());
  DEVID_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE found, FindOneObject(*token, lease.handle(), uri,
                                                               CKO_PRIVATE_KEY, "private key"));
  DEVID_ASSIGN_OR_RETURN(std::string id, GetAttribute(*token, lease.handle(), found, CKA_ID));
  DEVID_ASSIGN_OR_RETURN(auto publics,
                         FindObjects(*token, lease.handle(), CKO_PUBLIC_KEY, nullptr, &id));
  if (publics.size() != 1) {
    return std::unexpected(
        NotFound("key " + uri.ToString() + ": no public key object with its id"));
  }
  DEVID_ASSIGN_OR_RETURN(KeyAlgorithm algorithm,
                         AlgorithmOfTokenKey(*token, lease.handle(), publics[0]));
  DEVID_ASSIGN_OR_RETURN(ossl::UniquePtr<EVP_PKEY> public_key,
                         PublicKeyFromToken(*token, lease.handle(), publics[0], algorithm));
  lease->private_keys[id] = found;
  KeyUri named = uri;
  named.path_attributes["id"] = id;
  return std::make_unique<Pkcs11Key>(named.ToString(), algorithm, std::move(public_key),
                                     std::move(token), id);
}

Result<std::unique_ptr<HmacKey>> Pkcs11KeyStore::ImportHmacKey(const KeyUri& uri,
                                                               std::span<const uint8_t> key) {
  std::optional<std::string> label = uri.PathAttribute("object");
  if (!label || label->empty()) {
    return std::unexpected(
        InvalidArgument("key " + uri.ToString() + ": name the key with object="));
  }
  // RFC 2104 §3 discourages HMAC keys shorter than the hash output (32 bytes for SHA-256), and
  // tokens refuse them (SoftHSM2: CKR_KEY_SIZE_RANGE); DPS keys are 32 or 64 bytes.
  if (key.size() < 32 || key.size() > 512) {
    return std::unexpected(InvalidArgument("key " + uri.ToString() + ": a symmetric key of " +
                                           std::to_string(key.size()) +
                                           " bytes; expected 32 to 512 bytes"));
  }
  DEVID_ASSIGN_OR_RETURN(std::shared_ptr<Token> token, OpenToken(uri));
  KeyUri named = uri;
  DEVID_ASSIGN_OR_RETURN(std::string id, KeyIdOf(uri, named));
  DEVID_ASSIGN_OR_RETURN(Token::Lease lease, token->Acquire());
  DEVID_ASSIGN_OR_RETURN(auto by_label,
                         FindObjects(*token, lease.handle(), CKO_SECRET_KEY, &*label, nullptr));
  DEVID_ASSIGN_OR_RETURN(auto by_id,
                         FindObjects(*token, lease.handle(), CKO_SECRET_KEY, nullptr, &id));
  if (!by_label.empty() || !by_id.empty()) {
    return std::unexpected(AlreadyExists("key " + named.ToString() + " already exists"));
  }

  CK_OBJECT_CLASS klass = CKO_SECRET_KEY;
  CK_KEY_TYPE type = CKK_GENERIC_SECRET;
  CK_BBOOL yes = CK_TRUE;
  CK_BBOOL no = CK_FALSE;
  // Sensitive and not extractable (PKCS #11 v2.40 §4.10): the value cannot be read or wrapped
  // out. It signs (computes MACs) and nothing else: a SAS key that could also encrypt or derive
  // would let the token be used as an oracle for other purposes.
  std::vector<CK_ATTRIBUTE> attributes = {
      {CKA_CLASS, &klass, sizeof(klass)}, {CKA_KEY_TYPE, &type, sizeof(type)},
      {CKA_TOKEN, &yes, sizeof(yes)},     {CKA_PRIVATE, &yes, sizeof(yes)},
      {CKA_SENSITIVE, &yes, sizeof(yes)}, {CKA_EXTRACTABLE, &no, sizeof(no)},
      {CKA_SIGN, &yes, sizeof(yes)},      {CKA_VERIFY, &no, sizeof(no)},
      {CKA_ENCRYPT, &no, sizeof(no)},     {CKA_DECRYPT, &no, sizeof(no)},
      {CKA_WRAP, &no, sizeof(no)},        {CKA_UNWRAP, &no, sizeof(no)},
      {CKA_DERIVE, &no, sizeof(no)},      {CKA_LABEL, label->data(), label->size()},
      {CKA_ID, id.data(), id.size()},     {CKA_VALUE, const_cast<uint8_t*>(key.data()), key.size()},
  };
  CK_OBJECT_HANDLE object = CK_INVALID_HANDLE;
  CK_RV rv = token->module->f->C_CreateObject(lease.handle(), attributes.data(), attributes.size(),
                                              &object);
  if (rv != CKR_OK) {
    return std::unexpected(Pkcs11Error("importing symmetric key " + named.ToString(), rv));
  }
  lease->secret_keys[id] = object;
  return std::make_unique<Pkcs11HmacKey>(named.ToString(), std::move(token), id);
}

Result<std::unique_ptr<HmacKey>> Pkcs11KeyStore::LoadHmacKey(const KeyUri& uri) {
  DEVID_TRY(RequireKeyName(uri));
  DEVID_ASSIGN_OR_RETURN(std::shared_ptr<Token> token, OpenToken(uri));
  DEVID_ASSIGN_OR_RETURN(Token::Lease lease, token->Acquire());
  DEVID_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE found, FindOneObject(*token, lease.handle(), uri,
                                                               CKO_SECRET_KEY, "symmetric key"));
  DEVID_ASSIGN_OR_RETURN(std::string sign, GetAttribute(*token, lease.handle(), found, CKA_SIGN));
  if (sign.size() != sizeof(CK_BBOOL) || sign[0] != CK_TRUE) {
    return std::unexpected(
        InvalidArgument("key " + uri.ToString() + " may not compute MACs (CKA_SIGN is false)"));
  }
  DEVID_ASSIGN_OR_RETURN(std::string id, GetAttribute(*token, lease.handle(), found, CKA_ID));
  lease->secret_keys[id] = found;
  KeyUri named = uri;
  named.path_attributes["id"] = id;
  return std::make_unique<Pkcs11HmacKey>(named.ToString(), std::move(token), id);
}

namespace {

// PrivateKeyId returns the CKA_ID of the one private key matching uri's object and id.
Result<std::string> PrivateKeyId(Token& token, CK_SESSION_HANDLE session, const KeyUri& uri) {
  DEVID_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE found,
                         FindOneObject(token, session, uri, CKO_PRIVATE_KEY, "private key"));
  return GetAttribute(token, session, found, CKA_ID);
}

// KeyPairObjects returns the public keys, then the private keys, whose CKA_ID is id.
Result<std::vector<CK_OBJECT_HANDLE>> KeyPairObjects(Token& token, CK_SESSION_HANDLE session,
                                                     const std::string& id) {
  DEVID_ASSIGN_OR_RETURN(auto objects, FindObjects(token, session, CKO_PUBLIC_KEY, nullptr, &id));
  DEVID_ASSIGN_OR_RETURN(auto privates, FindObjects(token, session, CKO_PRIVATE_KEY, nullptr, &id));
  objects.insert(objects.end(), privates.begin(), privates.end());
  return objects;
}

// ForgetKeyHandles drops the handles the pooled sessions cached for the private key with CKA_ID
// id, which stop being valid when it is destroyed.
void ForgetKeyHandles(Token& token, Token::Lease& lease, const std::string& id) {
  lease->private_keys.erase(id);
  std::lock_guard lock(token.mu);
  for (auto& session : token.idle) session->private_keys.erase(id);
}

}  // namespace

Status Pkcs11KeyStore::DeleteKey(const KeyUri& uri) {
  DEVID_ASSIGN_OR_RETURN(std::shared_ptr<Token> token, OpenToken(uri));
  DEVID_ASSIGN_OR_RETURN(Token::Lease lease, token->Acquire());
  DEVID_ASSIGN_OR_RETURN(std::string id, PrivateKeyId(*token, lease.handle(), uri));
  DEVID_ASSIGN_OR_RETURN(auto objects, KeyPairObjects(*token, lease.handle(), id));
  ForgetKeyHandles(*token, lease, id);
  // Private keys first (KeyPairObjects lists them last).
  for (auto it = objects.rbegin(); it != objects.rend(); ++it) {
    CK_RV rv = token->module->f->C_DestroyObject(lease.handle(), *it);
    if (rv != CKR_OK) return std::unexpected(Pkcs11Error("deleting key " + uri.ToString(), rv));
  }
  return Ok();
}

Status Pkcs11KeyStore::RelabelKey(const KeyUri& uri, const std::string& label) {
  if (label.empty()) {
    return std::unexpected(InvalidArgument("relabelling key " + uri.ToString() + ": empty label"));
  }
  DEVID_ASSIGN_OR_RETURN(std::shared_ptr<Token> token, OpenToken(uri));
  DEVID_ASSIGN_OR_RETURN(Token::Lease lease, token->Acquire());
  DEVID_ASSIGN_OR_RETURN(std::string current_id, PrivateKeyId(*token, lease.handle(), uri));
  std::string doing = "relabelling key " + uri.ToString() + " as " + label;
  // Labels name keys in URIs: another private key with this one would make both ambiguous.
  DEVID_ASSIGN_OR_RETURN(auto by_label,
                         FindObjects(*token, lease.handle(), CKO_PRIVATE_KEY, &label, nullptr));
  for (CK_OBJECT_HANDLE object : by_label) {
    DEVID_ASSIGN_OR_RETURN(std::string other_id,
                           GetAttribute(*token, lease.handle(), object, CKA_ID));
    if (other_id != current_id) {
      return std::unexpected(AlreadyExists(doing + ": another private key has that label"));
    }
  }
  DEVID_ASSIGN_OR_RETURN(auto objects, KeyPairObjects(*token, lease.handle(), current_id));
  CK_ATTRIBUTE attribute = {CKA_LABEL, const_cast<char*>(label.data()), label.size()};
  for (CK_OBJECT_HANDLE object : objects) {
    CK_RV rv = token->module->f->C_SetAttributeValue(lease.handle(), object, &attribute, 1);
    if (rv != CKR_OK) return std::unexpected(Pkcs11Error(doing, rv));
  }
  return Ok();
}

}  // namespace devid::keys
