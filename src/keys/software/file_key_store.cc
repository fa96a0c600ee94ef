#include "keys/software/file_key_store.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "base/file.h"
#include "ossl/error.h"

namespace devid::keys {
namespace {

class InMemoryKey final : public Key {
 public:
  InMemoryKey(std::string uri, KeyAlgorithm algorithm, ossl::UniquePtr<EVP_PKEY> public_key,
              ossl::UniquePtr<EVP_PKEY> private_key)
      : Key(std::move(uri), algorithm, std::move(public_key)),
        private_key_(std::move(private_key)),
        sign_template_(SignTemplate(SignatureDigest(this->algorithm()), private_key_.get())) {}

  Result<std::vector<uint8_t>> Sign(std::span<const uint8_t> message) const override {
    // A fresh EVP_MD_CTX per call: threads only read the shared key and template, so they do
    // not contend. Copying the template spares the signature and digest look-ups of an init.
    ossl::UniquePtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
    bool ready = ctx && (sign_template_
                             ? EVP_MD_CTX_copy_ex(ctx.get(), sign_template_.get())
                             : EVP_DigestSignInit(ctx.get(), nullptr, SignatureDigest(algorithm()),
                                                  nullptr, private_key_.get())) == 1;
    size_t len = 0;
    if (!ready || EVP_DigestSign(ctx.get(), nullptr, &len, message.data(), message.size()) != 1) {
      return std::unexpected(ossl::ErrorFromQueue("signing with " + uri()));
    }
    std::vector<uint8_t> signature(len);
    if (EVP_DigestSign(ctx.get(), signature.data(), &len, message.data(), message.size()) != 1) {
      return std::unexpected(ossl::ErrorFromQueue("signing with " + uri()));
    }
    signature.resize(len);
    return signature;
  }

  Result<std::vector<uint8_t>> SignDigest(std::span<const uint8_t> digest) const override {
    DEVID_TRY(CheckSignsDigests(*this));
    // No digest is set on the context, so OpenSSL signs the bytes as given, of any length.
    ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, private_key_.get(),
                                                                 nullptr));
    size_t len = 0;
    if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
        EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data(), digest.size()) != 1) {
      return std::unexpected(ossl::ErrorFromQueue("signing a digest with " + uri()));
    }
    std::vector<uint8_t> signature(len);
    if (EVP_PKEY_sign(ctx.get(), signature.data(), &len, digest.data(), digest.size()) != 1) {
      return std::unexpected(ossl::ErrorFromQueue("signing a digest with " + uri()));
    }
    signature.resize(len);
    return signature;
  }

 private:
  // SignTemplate is a signing context set up once for key and digest, which Sign copies; null for
  // keys that hash as they sign (Ed25519) or when it cannot be made (Sign then sets up its own).
  static ossl::UniquePtr<EVP_MD_CTX> SignTemplate(const EVP_MD* digest, EVP_PKEY* key) {
    if (digest == nullptr) return nullptr;
    ossl::UniquePtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, digest, nullptr, key) != 1) {
      ERR_clear_error();
      return nullptr;
    }
    return ctx;
  }

  ossl::UniquePtr<EVP_PKEY> private_key_;
  ossl::UniquePtr<EVP_MD_CTX> sign_template_;
};

// PublicHalf copies the public part of key into a key object that holds no private material.
Result<ossl::UniquePtr<EVP_PKEY>> PublicHalf(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return std::unexpected(ossl::ErrorFromQueue("encoding a public key"));
  const unsigned char* p = der;
  ossl::UniquePtr<EVP_PKEY> pub(d2i_PUBKEY(nullptr, &p, len));
  OPENSSL_free(der);
  if (!pub) return std::unexpected(ossl::ErrorFromQueue("decoding a public key"));
  return pub;
}

std::string ErrnoText() { return std::strerror(errno); }

Status WriteNewFile(const std::string& path, std::string_view data) {
  // O_EXCL: a key file is never replaced, so a typo cannot destroy a CA key.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return std::unexpected(AlreadyExists("key file " + path + " exists"));
    if (errno == ENOENT) {
      return std::unexpected(NotFound("creating key file " + path + ": " + ErrnoText()));
    }
    return std::unexpected(Unavailable("creating key file " + path + ": " + ErrnoText()));
  }
  ::fchmod(fd, 0600);  // whatever the umask
  if (auto written = WriteSyncClose(fd, data, "key file " + path); !written) {
    ::unlink(path.c_str());
    return written;
  }
  return Ok();
}

Result<std::unique_ptr<Key>> Wrap(std::string uri, ossl::UniquePtr<EVP_PKEY> key) {
  DEVID_ASSIGN_OR_RETURN(KeyAlgorithm algorithm, AlgorithmOfPublicKey(key.get()));
  DEVID_ASSIGN_OR_RETURN(ossl::UniquePtr<EVP_PKEY> pub, PublicHalf(key.get()));
  return std::make_unique<InMemoryKey>(std::move(uri), algorithm, std::move(pub), std::move(key));
}

}  // namespace

Result<ossl::UniquePtr<EVP_PKEY>> GenerateSoftwareKey(KeyAlgorithm algorithm) {
  ossl::UniquePtr<EVP_PKEY> key;
  switch (algorithm) {
    case KeyAlgorithm::kEcdsaP256:
      key.reset(EVP_EC_gen("P-256"));
      break;
    case KeyAlgorithm::kEcdsaP384:
      key.reset(EVP_EC_gen("P-384"));
      break;
    case KeyAlgorithm::kRsa3072:
      key.reset(EVP_RSA_gen(3072));
      break;
    case KeyAlgorithm::kEd25519:
      key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
      break;
  }
  if (!key) {
    return std::unexpected(
        ossl::ErrorFromQueue("generating an " + std::string(KeyAlgorithmName(algorithm)) + " key"));
  }
  return key;
}

Result<std::unique_ptr<Key>> SoftwareKey(ossl::UniquePtr<EVP_PKEY> private_key, std::string uri) {
  return Wrap(std::move(uri), std::move(private_key));
}

Result<Secret> FileKeyStore::Passphrase(const KeyUri& uri) const {
  Secret passphrase;
  if (auto name = uri.QueryAttribute("passphrase-env")) {
    std::optional<std::string> value = getenv_(*name);
    if (!value) {
      return std::unexpected(InvalidArgument("key " + uri.ToString() + ": environment variable " +
                                             *name + " is not set"));
    }
    passphrase.Assign(*value);
    OPENSSL_cleanse(value->data(), value->size());
  } else if (auto file = uri.QueryAttribute("passphrase-file")) {
    std::ifstream in(*file, std::ios::binary);
    if (!in) {
      return std::unexpected(NotFound("key " + uri.ToString() + ": cannot read passphrase file " +
                                      *file + ": " + ErrnoText()));
    }
    std::string line;
    std::getline(in, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    passphrase.Assign(line);
    OPENSSL_cleanse(line.data(), line.size());
  } else {
    return std::unexpected(InvalidArgument("key " + uri.ToString() +
                                           ": file keys are encrypted; add passphrase-env or "
                                           "passphrase-file to the URI"));
  }
  if (passphrase.empty()) {
    return std::unexpected(InvalidArgument("key " + uri.ToString() + ": the passphrase is empty"));
  }
  return passphrase;
}

Result<std::unique_ptr<Key>> FileKeyStore::Create(const KeyUri& uri, KeyAlgorithm algorithm) {
  if (uri.scheme != "file") return std::unexpected(InvalidArgument("not a file: URI"));
  DEVID_ASSIGN_OR_RETURN(Secret passphrase, Passphrase(uri));
  DEVID_ASSIGN_OR_RETURN(ossl::UniquePtr<EVP_PKEY> key, GenerateSoftwareKey(algorithm));
  // PEM_write_bio_PKCS8PrivateKey with a cipher writes PBES2; OpenSSL 3's default PRF for it is
  // HMAC-SHA256 with PBKDF2 (RFC 8018 §6.2, appendix A.2).
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PKCS8PrivateKey(
                  bio.get(), key.get(), EVP_aes_256_cbc(), passphrase.value().data(),
                  static_cast<int>(passphrase.value().size()), nullptr, nullptr) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("encrypting key " + uri.ToString()));
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  DEVID_TRY(WriteNewFile(uri.path, std::string_view(data, static_cast<size_t>(len))));
  return Wrap(uri.ToString(), std::move(key));
}

Result<std::unique_ptr<Key>> FileKeyStore::Load(const KeyUri& uri) {
  if (uri.scheme != "file") return std::unexpected(InvalidArgument("not a file: URI"));
  auto read = ReadFile(uri.path);
  if (!read) return std::unexpected(read.error().WithContext("loading key " + uri.ToString()));
  const std::string& text = *read;
  if (text.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") == std::string::npos) {
    return std::unexpected(InvalidArgument(
        "loading key " + uri.ToString() +
        ": not an encrypted PKCS #8 key (convert with openssl pkcs8 -topk8 -v2 aes-256-cbc)"));
  }
  DEVID_ASSIGN_OR_RETURN(Secret passphrase, Passphrase(uri));
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  // With no callback, OpenSSL takes u as the NUL-terminated passphrase.
  ossl::UniquePtr<EVP_PKEY> key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr,
                                    const_cast<char*>(passphrase.value().c_str()))
          : nullptr);
  if (!key) {
    return std::unexpected(
        ossl::ErrorFromQueue("loading key " + uri.ToString() + ": wrong passphrase or damaged file",
                             ErrorCode::kPermissionDenied));
  }
  return Wrap(uri.ToString(), std::move(key));
}

}  // namespace devid::keys
