#include "pki/csr.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ossl/error.h"
#include "pki/signature_algorithm.h"

namespace devid::pki {

Result<Csr> Csr::FromPem(std::string_view pem) {
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::UniquePtr<X509_REQ> req(bio ? PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr)
                                    : nullptr);
  if (!req) {
    return std::unexpected(
        ossl::ErrorFromQueue("parsing a PEM certificate request", ErrorCode::kInvalidArgument));
  }
  return Csr(std::move(req));
}

Result<Csr> Csr::FromDer(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  const unsigned char* start = p;
  ossl::UniquePtr<X509_REQ> req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
  if (!req) {
    return std::unexpected(
        ossl::ErrorFromQueue("parsing a DER certificate request", ErrorCode::kInvalidArgument));
  }
  if (static_cast<size_t>(p - start) != der.size()) {
    return std::unexpected(InvalidArgument("certificate request has trailing bytes"));
  }
  return Csr(std::move(req));
}

Result<Csr> Csr::Sign(const X509_NAME* subject, const keys::Key& key) {
  ossl::UniquePtr<X509_REQ> req(X509_REQ_new());
  ossl::UniquePtr<X509_ALGOR> algorithm(X509_ALGOR_new());
  if (!req || !algorithm || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_subject_name(req.get(), subject) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.public_key()) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("building a certificate request"));
  }
  DEVID_TRY(SetSignatureAlgorithm(algorithm.get(), key.algorithm()));
  if (X509_REQ_set1_signature_algo(req.get(), algorithm.get()) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("building a certificate request"));
  }
  // RFC 2986 §4.2: the signature covers the DER CertificationRequestInfo; i2d_re re-encodes it
  // after the changes above, and that cached encoding is what i2d_X509_REQ writes out.
  unsigned char* info = nullptr;
  int info_length = i2d_re_X509_REQ_tbs(req.get(), &info);
  if (info_length <= 0) {
    return std::unexpected(ossl::ErrorFromQueue("encoding a certificate request"));
  }
  auto signature = key.Sign({info, static_cast<size_t>(info_length)});
  OPENSSL_free(info);
  if (!signature) {
    return std::unexpected(signature.error().WithContext("signing a certificate request"));
  }
  ASN1_BIT_STRING* bits = ASN1_BIT_STRING_new();
  if (bits == nullptr ||
      ASN1_BIT_STRING_set(bits, signature->data(), static_cast<int>(signature->size())) != 1) {
    ASN1_BIT_STRING_free(bits);
    return std::unexpected(ossl::ErrorFromQueue("setting a certificate request's signature"));
  }
  // Whole octets: no unused bits.
  bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
  bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
  X509_REQ_set0_signature(req.get(), bits);  // req takes ownership.
  return Csr(std::move(req));
}

std::string Csr::ToDer() const {
  unsigned char* der = nullptr;
  int length = i2d_X509_REQ(req_.get(), &der);
  if (length <= 0) {
    ERR_clear_error();
    return "";
  }
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return out;
}

Status Csr::VerifySignature() const {
  EVP_PKEY* key = public_key();
  if (key == nullptr || X509_REQ_verify(req_.get(), key) != 1) {
    return std::unexpected(
        ossl::ErrorFromQueue("certificate request signature does not verify with its public key",
                             ErrorCode::kInvalidArgument));
  }
  return Ok();
}

std::string Csr::SubjectCommonName() const {
  const X509_NAME* name = X509_REQ_get_subject_name(req_.get());
  int index = -1;
  int last = -1;
  while ((index = X509_NAME_get_index_by_NID(name, NID_commonName, index)) >= 0) last = index;
  if (last < 0) return "";
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) {
    ERR_clear_error();
    return "";
  }
  std::string cn(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return cn;
}

EVP_PKEY* Csr::public_key() const {
  // X509_REQ_get0_pubkey decodes on demand; a malformed key yields nullptr and a queued error.
  EVP_PKEY* key = X509_REQ_get0_pubkey(req_.get());
  if (key == nullptr) ERR_clear_error();
  return key;
}

}  // namespace devid::pki
