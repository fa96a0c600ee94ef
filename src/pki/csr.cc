#include "pki/csr.h"

#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "ossl/error.h"
#include "pki/public_key_info.h"
#include "pki/signature_algorithm.h"

namespace devid::pki {
namespace {

// The CertificationRequest of RFC 2986 §4.1 with the subject public key left as algorithm and
// bits (X509_REQ's template decodes it). The info keeps the encoding the signature covers.
struct DEVID_CSR_KEY {
  X509_ALGOR* algorithm;
  ASN1_BIT_STRING* public_key;
};

struct DEVID_CSR_INFO {
  ASN1_ENCODING enc;
  ASN1_INTEGER* version;
  X509_NAME* subject;
  DEVID_CSR_KEY* key;
  STACK_OF(X509_ATTRIBUTE) * attributes;
};

struct DEVID_CSR {
  DEVID_CSR_INFO* info;
  X509_ALGOR* signature_algorithm;
  ASN1_BIT_STRING* signature;
};

// OpenSSL's ASN.1 template macros, which clang-format cannot lay out (nor what follows them).
// clang-format off
ASN1_SEQUENCE(DEVID_CSR_KEY) = {
    ASN1_SIMPLE(DEVID_CSR_KEY, algorithm, X509_ALGOR),
    ASN1_SIMPLE(DEVID_CSR_KEY, public_key, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END(DEVID_CSR_KEY)

ASN1_SEQUENCE_enc(DEVID_CSR_INFO, enc, 0) = {
    ASN1_SIMPLE(DEVID_CSR_INFO, version, ASN1_INTEGER),
    ASN1_SIMPLE(DEVID_CSR_INFO, subject, X509_NAME),
    ASN1_SIMPLE(DEVID_CSR_INFO, key, DEVID_CSR_KEY),
    // Optional as in OpenSSL's X509_REQ_INFO: RFC 2986 requires the [0] attributes, some
    // clients leave them out when empty.
    ASN1_IMP_SET_OF_OPT(DEVID_CSR_INFO, attributes, X509_ATTRIBUTE, 0),
} ASN1_SEQUENCE_END_enc(DEVID_CSR_INFO, DEVID_CSR_INFO)

ASN1_SEQUENCE(DEVID_CSR) = {
    ASN1_SIMPLE(DEVID_CSR, info, DEVID_CSR_INFO),
    ASN1_SIMPLE(DEVID_CSR, signature_algorithm, X509_ALGOR),
    ASN1_SIMPLE(DEVID_CSR, signature, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END(DEVID_CSR)

std::span<const unsigned char> Bytes(const ASN1_STRING* string) {
  return {ASN1_STRING_get0_data(string), static_cast<size_t>(ASN1_STRING_length(string))};
}
// clang-format on

// ImportCurvePoint makes the key of a P-256 or P-384 SubjectPublicKeyInfo from its point through
// the EC key manager, which checks the point is on the curve, without the decoder machinery;
// null for any other key.
ossl::UniquePtr<EVP_PKEY> ImportCurvePoint(const DEVID_CSR_KEY& key) {
  const ASN1_OBJECT* type = nullptr;
  int parameter_type = V_ASN1_UNDEF;
  const void* parameter = nullptr;
  X509_ALGOR_get0(&type, &parameter_type, &parameter, key.algorithm);
  if (OBJ_obj2nid(type) != NID_X9_62_id_ecPublicKey || parameter_type != V_ASN1_OBJECT) {
    return nullptr;
  }
  int curve = OBJ_obj2nid(static_cast<const ASN1_OBJECT*>(parameter));
  if (curve != NID_X9_62_prime256v1 && curve != NID_secp384r1) return nullptr;
  if ((key.public_key->flags & ASN1_STRING_FLAG_BITS_LEFT) != 0 &&
      (key.public_key->flags & 0x07) != 0) {
    return nullptr;  // a point is whole octets
  }
  std::span<const unsigned char> point = Bytes(key.public_key);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                       const_cast<char*>(OBJ_nid2sn(curve)), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                        const_cast<unsigned char*>(point.data()), point.size()),
      OSSL_PARAM_construct_end()};
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* out = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    ERR_clear_error();
    return nullptr;
  }
  return ossl::UniquePtr<EVP_PKEY>(out);
}

// DecodeKey makes the request's key: a P-256 or P-384 point directly, any other key through
// OpenSSL's decoders. Null when it does not decode.
ossl::UniquePtr<EVP_PKEY> DecodeKey(const DEVID_CSR_KEY& key) {
  if (auto imported = ImportCurvePoint(key)) return imported;
  unsigned char* der = nullptr;
  int length =
      ASN1_item_i2d(reinterpret_cast<const ASN1_VALUE*>(&key), &der, ASN1_ITEM_rptr(DEVID_CSR_KEY));
  const unsigned char* p = der;
  EVP_PKEY* out = length > 0 ? d2i_PUBKEY(nullptr, &p, length) : nullptr;
  OPENSSL_free(der);
  if (out == nullptr) ERR_clear_error();
  return ossl::UniquePtr<EVP_PKEY>(out);
}

// RequestOf copies the request's fields into an X509_REQ, its key as encoded.
Result<ossl::UniquePtr<X509_REQ>> RequestOf(const DEVID_CSR& csr) {
  const DEVID_CSR_INFO& info = *csr.info;
  ossl::UniquePtr<X509_REQ> req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), ASN1_INTEGER_get(info.version)) != 1 ||
      X509_REQ_set_subject_name(req.get(), info.subject) != 1 ||
      X509_REQ_set1_signature_algo(req.get(), csr.signature_algorithm) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("copying a certificate request"));
  }
  for (int i = 0; i < sk_X509_ATTRIBUTE_num(info.attributes); ++i) {
    if (X509_REQ_add1_attr(req.get(), sk_X509_ATTRIBUTE_value(info.attributes, i)) != 1) {
      return std::unexpected(ossl::ErrorFromQueue("copying a certificate request's attributes"));
    }
  }
  DEVID_TRY(SetPublicKeyInfo(info.key->algorithm, Bytes(info.key->public_key),
                             X509_REQ_get_X509_PUBKEY(req.get())));
  ASN1_BIT_STRING* signature = ASN1_STRING_dup(csr.signature);
  if (signature == nullptr) {
    return std::unexpected(ossl::ErrorFromQueue("copying a certificate request's signature"));
  }
  X509_REQ_set0_signature(req.get(), signature);  // req takes ownership.
  return req;
}

}  // namespace

struct Csr::Signed {
  explicit Signed(DEVID_CSR* parsed) : csr(parsed) {}
  ~Signed() { ASN1_item_free(reinterpret_cast<ASN1_VALUE*>(csr), ASN1_ITEM_rptr(DEVID_CSR)); }
  Signed(const Signed&) = delete;
  Signed& operator=(const Signed&) = delete;
  DEVID_CSR* csr;
};

Csr::Csr(Csr&&) noexcept = default;
Csr& Csr::operator=(Csr&&) noexcept = default;
Csr::~Csr() = default;

Result<Csr> Csr::FromPem(std::string_view pem) {
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  unsigned char* der = nullptr;
  long length = 0;
  if (!bio || PEM_bytes_read_bio(&der, &length, nullptr, PEM_STRING_X509_REQ, bio.get(), nullptr,
                                 nullptr) != 1) {
    return std::unexpected(
        ossl::ErrorFromQueue("parsing a PEM certificate request", ErrorCode::kInvalidArgument));
  }
  std::string bytes(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return FromDer(bytes);
}

Result<Csr> Csr::FromDer(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  const unsigned char* start = p;
  auto* parsed = reinterpret_cast<DEVID_CSR*>(
      ASN1_item_d2i(nullptr, &p, static_cast<long>(der.size()), ASN1_ITEM_rptr(DEVID_CSR)));
  if (parsed == nullptr) {
    return std::unexpected(
        ossl::ErrorFromQueue("parsing a DER certificate request", ErrorCode::kInvalidArgument));
  }
  Csr csr;
  csr.signed_ = std::make_unique<Signed>(parsed);
  if (static_cast<size_t>(p - start) != der.size()) {
    return std::unexpected(InvalidArgument("certificate request has trailing bytes"));
  }
  DEVID_ASSIGN_OR_RETURN(csr.req_, RequestOf(*parsed));
  csr.key_ = DecodeKey(*parsed->info->key);
  csr.der_ = std::string(der);
  return csr;
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
  unsigned char* der = nullptr;
  int length = i2d_X509_REQ(req.get(), &der);
  if (length <= 0) return std::unexpected(ossl::ErrorFromQueue("encoding a certificate request"));
  std::string bytes(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return FromDer(bytes);
}

Status Csr::VerifySignature() const {
  const DEVID_CSR& csr = *signed_->csr;
  if (key_ == nullptr ||
      ASN1_item_verify_ex(ASN1_ITEM_rptr(DEVID_CSR_INFO), csr.signature_algorithm, csr.signature,
                          csr.info, nullptr, key_.get(), nullptr, nullptr) != 1) {
    return std::unexpected(
        ossl::ErrorFromQueue("certificate request signature does not verify with its public key",
                             ErrorCode::kInvalidArgument));
  }
  return Ok();
}

std::string Csr::ToPem() const {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio(bio.get(), "CERTIFICATE REQUEST", "",
                            reinterpret_cast<const unsigned char*>(der_.data()),
                            static_cast<long>(der_.size())) <= 0) {
    return {};
  }
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(length));
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

}  // namespace devid::pki
