#pragma once

#include <openssl/x509.h>

#include <string>
#include <string_view>

#include "base/result.h"
#include "keys/key_store.h"
#include "ossl/unique_ptr.h"

namespace devid::pki {

// Csr is a parsed PKCS #10 certification request (RFC 2986). Move-only.
class Csr {
 public:
  // FromPem parses a "CERTIFICATE REQUEST" PEM block; FromDer one DER request (no trailing
  // bytes). Both fail with kInvalidArgument.
  static Result<Csr> FromPem(std::string_view pem);
  static Result<Csr> FromDer(std::string_view der);

  // Sign builds a request for subject (copied; the caller keeps it) and key's public key, with no
  // attributes, and signs it through key with its algorithm (Key::Sign): the private key never
  // leaves its store. Fails with the key's error, or kInternal when OpenSSL cannot encode.
  static Result<Csr> Sign(const X509_NAME* subject, const keys::Key& key);

  // ToDer returns the request as DER.
  std::string ToDer() const;

  // VerifySignature checks the request's self-signature with its own public key: the proof that
  // the requester holds the private key (RFC 2986 §3, RFC 7030 §3.4 and §4.2.1). Fails with
  // kInvalidArgument when it does not verify.
  Status VerifySignature() const;

  // SubjectCommonName returns the last CN in the subject, or "" when there is none.
  std::string SubjectCommonName() const;

  // public_key returns the requested subject public key; owned by this object.
  EVP_PKEY* public_key() const;
  // public_key_info returns the SubjectPublicKeyInfo as the request carried it; owned by this
  // object (ca::CertificateRequest::public_key_info copies it into a certificate).
  const X509_PUBKEY* public_key_info() const { return X509_REQ_get_X509_PUBKEY(req_.get()); }

  // get returns the OpenSSL request; it stays owned by this object.
  X509_REQ* get() const { return req_.get(); }

 private:
  explicit Csr(ossl::UniquePtr<X509_REQ> req) : req_(std::move(req)) {}
  ossl::UniquePtr<X509_REQ> req_;
};

}  // namespace devid::pki
