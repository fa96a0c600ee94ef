#pragma once

#include <openssl/x509.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "ossl/unique_ptr.h"

namespace devid::pki {

// Certificate is a parsed X.509 certificate. Move-only; Clone makes an independent copy.
class Certificate {
 public:
  // FromPem parses the first PEM certificate in pem; fails with kInvalidArgument.
  static Result<Certificate> FromPem(std::string_view pem);
  // FromDer parses one DER certificate; fails with kInvalidArgument (also on trailing bytes).
  static Result<Certificate> FromDer(std::string_view der);
  // AllFromPem parses every certificate in a PEM bundle (at least one).
  static Result<std::vector<Certificate>> AllFromPem(std::string_view pem);
  // Adopt takes ownership of an OpenSSL certificate.
  static Certificate Adopt(ossl::UniquePtr<X509> x509) { return Certificate(std::move(x509)); }

  Certificate Clone() const;

  std::string ToPem() const;
  std::string ToDer() const;
  // SubjectCommonName returns the last CN in the subject, or "" when there is none.
  std::string SubjectCommonName() const;
  // SubjectName / IssuerName render the names one-line, RFC 2253 style ("CN=x,O=y").
  std::string SubjectName() const;
  std::string IssuerName() const;
  // SerialHex returns the serial number as uppercase hex.
  std::string SerialHex() const;
  // Sha256Thumbprint / Sha1Thumbprint return the digest of the DER as uppercase hex.
  std::string Sha256Thumbprint() const;
  std::string Sha1Thumbprint() const;
  std::chrono::system_clock::time_point NotBefore() const;
  std::chrono::system_clock::time_point NotAfter() const;

  // get returns the OpenSSL certificate; it stays owned by this object.
  X509* get() const { return x509_.get(); }

 private:
  explicit Certificate(ossl::UniquePtr<X509> x509) : x509_(std::move(x509)) {}
  ossl::UniquePtr<X509> x509_;
};

}  // namespace devid::pki
