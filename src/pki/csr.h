#pragma once

#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "keys/key_store.h"
#include "ossl/unique_ptr.h"

namespace devid::pki {

// Csr is a parsed PKCS #10 certification request (RFC 2986). Move-only.
//
// Its public key is not decoded the way d2i_X509_REQ does it: OpenSSL 3.0 decodes a
// SubjectPublicKeyInfo through its provider decoders (about 100 µs a key, more under contention,
// the largest cost of an EST enrollment). The request is parsed with the key left encoded; P-256
// and P-384 keys are then imported from their point directly, other keys decoded as before.
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

  Csr(Csr&&) noexcept;
  Csr& operator=(Csr&&) noexcept;
  ~Csr();

  // ToDer returns the request as DER, as it was parsed.
  std::string ToDer() const { return der_; }
  // ToPem returns those same bytes as a "CERTIFICATE REQUEST" PEM block.
  std::string ToPem() const;

  // VerifySignature checks the request's self-signature with its own public key: the proof that
  // the requester holds the private key (RFC 2986 §3, RFC 7030 §3.4 and §4.2.1). Fails with
  // kInvalidArgument when it does not verify.
  Status VerifySignature() const;

  // SubjectCommonName returns the last CN in the subject, or "" when there is none.
  std::string SubjectCommonName() const;

  // public_key returns the requested subject public key, or null when it does not decode; owned
  // by this object.
  EVP_PKEY* public_key() const { return key_.get(); }
  // public_key_info returns the SubjectPublicKeyInfo as the request carried it; owned by this
  // object (ca::CertificateRequest::public_key_info copies it into a certificate).
  const X509_PUBKEY* public_key_info() const { return X509_REQ_get_X509_PUBKEY(req_.get()); }

  // get returns the request's fields as an OpenSSL request (subject, attributes, signature
  // algorithm); it stays owned by this object. Its key is present only as encoded:
  // X509_REQ_get0_pubkey answers null, public_key() is the decoded key.
  X509_REQ* get() const { return req_.get(); }

 private:
  struct Signed;  // the signed part with its encoding, the signature algorithm and value
  Csr() = default;
  std::string der_;
  ossl::UniquePtr<X509_REQ> req_;
  ossl::UniquePtr<EVP_PKEY> key_;
  std::unique_ptr<Signed> signed_;
};

}  // namespace devid::pki
