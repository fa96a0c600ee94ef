#include "ca/csr_policy.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include <optional>

#include "keys/key_store.h"

namespace devid::ca {
namespace {

// ObjectName returns an OID's short name ("O", "nsComment"), or its dotted form when unknown.
std::string ObjectName(const ASN1_OBJECT* object) {
  int nid = OBJ_obj2nid(object);
  if (nid != NID_undef) return OBJ_nid2sn(nid);
  char name[128] = {};
  OBJ_obj2txt(name, sizeof(name), object, /*no_name=*/1);
  return name;
}

// EntryText returns a name entry's value as UTF-8, or nullopt when it cannot be decoded.
std::optional<std::string> EntryText(const X509_NAME_ENTRY* entry) {
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
  if (len < 0) {
    ERR_clear_error();
    return std::nullopt;
  }
  std::string text(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return text;
}

Status CheckSignature(const pki::Csr& csr) {
  DEVID_TRY(csr.VerifySignature());
  // A SHA-1 or MD5 signature proves possession only as well as its hash resists collisions.
  int md_nid = NID_undef;
  int pkey_nid = NID_undef;
  if (OBJ_find_sigid_algs(X509_REQ_get_signature_nid(csr.get()), &md_nid, &pkey_nid) != 1) {
    return std::unexpected(
        InvalidArgument("certificate request has an unknown signature algorithm"));
  }
  // NID_undef: the algorithm fixes its own hash (Ed25519) or names it in parameters (RSA-PSS).
  if (md_nid == NID_undef) return Ok();
  const EVP_MD* md = EVP_get_digestbynid(md_nid);
  if (md == nullptr || EVP_MD_get_size(md) < 32) {
    return std::unexpected(InvalidArgument("certificate request is signed with " +
                                           std::string(OBJ_nid2sn(md_nid)) +
                                           ": sign it with SHA-256 or stronger"));
  }
  return Ok();
}

Result<std::string> CheckSubject(const pki::Csr& csr) {
  const X509_NAME* subject = X509_REQ_get_subject_name(csr.get());
  int entries = X509_NAME_entry_count(subject);
  if (entries == 0) {
    return std::unexpected(
        InvalidArgument("the request's subject has no CN; it must be the registration ID"));
  }
  std::string common_name;
  int common_names = 0;
  for (int i = 0; i < entries; ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(subject, i);
    const ASN1_OBJECT* type = X509_NAME_ENTRY_get_object(entry);
    if (OBJ_obj2nid(type) != NID_commonName) {
      return std::unexpected(
          InvalidArgument("the request's subject carries " + ObjectName(type) +
                          "; devid certifies the subject CN=<registration ID> and nothing else"));
    }
    ++common_names;
    auto text = EntryText(entry);
    if (!text) return std::unexpected(InvalidArgument("the request's subject CN is not a string"));
    common_name = std::move(*text);
  }
  if (common_names > 1) {
    return std::unexpected(InvalidArgument("the request's subject has " +
                                           std::to_string(common_names) +
                                           " CNs; it must have one, the registration ID"));
  }
  if (common_name.empty()) {
    return std::unexpected(
        InvalidArgument("the request's subject CN is empty; it must be the registration ID"));
  }
  for (unsigned char c : common_name) {
    if (c < 0x20 || c == 0x7f) {
      return std::unexpected(
          InvalidArgument("the request's subject CN contains a control character"));
    }
  }
  return common_name;
}

// CheckExtension accepts the requested extensions that the device-client profile sets anyway
// (RFC 5280 §4.2.1.2, .3, .9, .12); what it sets wins.
Status CheckExtension(X509_EXTENSION* extension) {
  const ASN1_OBJECT* object = X509_EXTENSION_get_object(extension);
  switch (OBJ_obj2nid(object)) {
    case NID_key_usage:
    case NID_ext_key_usage:
    case NID_subject_key_identifier:
      return Ok();
    case NID_basic_constraints: {
      auto* constraints = static_cast<BASIC_CONSTRAINTS*>(X509V3_EXT_d2i(extension));
      if (constraints == nullptr) {
        ERR_clear_error();
        return std::unexpected(
            InvalidArgument("the request's basicConstraints extension is malformed"));
      }
      bool ca = constraints->ca != 0;
      BASIC_CONSTRAINTS_free(constraints);
      if (ca) {
        return std::unexpected(
            InvalidArgument("the request asks for a CA certificate (basicConstraints CA:TRUE); "
                            "devices get end-entity certificates only"));
      }
      return Ok();
    }
    case NID_subject_alt_name:
      return std::unexpected(InvalidArgument(
          "the request asks for a subjectAltName; device certificates name the device by its "
          "subject CN only: leave the extension out"));
    default:
      return std::unexpected(
          InvalidArgument("the request asks for extension " + ObjectName(object) +
                          ", which device certificates do not carry: leave it out"));
  }
}

Status CheckAttributes(const pki::Csr& csr) {
  X509_REQ* req = csr.get();
  bool has_extension_request = false;
  for (int i = 0; i < X509_REQ_get_attr_count(req); ++i) {
    const ASN1_OBJECT* type = X509_ATTRIBUTE_get0_object(X509_REQ_get_attr(req, i));
    switch (OBJ_obj2nid(type)) {
      case NID_ext_req:
        has_extension_request = true;
        break;
      case NID_pkcs9_challengePassword:
        return std::unexpected(InvalidArgument(
            "the request carries a challengePassword, which devid does not accept: authenticate "
            "with the device's SAS token or its devid certificate instead"));
      default:
        return std::unexpected(InvalidArgument(
            "certificate request carries unsupported attribute " + ObjectName(type)));
    }
  }
  if (!has_extension_request) return Ok();
  STACK_OF(X509_EXTENSION)* extensions = X509_REQ_get_extensions(req);
  if (extensions == nullptr) {
    ERR_clear_error();
    return std::unexpected(InvalidArgument("the request's extensionRequest is malformed"));
  }
  Status checked = Ok();
  for (int i = 0; i < sk_X509_EXTENSION_num(extensions) && checked; ++i) {
    checked = CheckExtension(sk_X509_EXTENSION_value(extensions, i));
  }
  sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
  return checked;
}

}  // namespace

Status CheckSubjectPublicKey(const EVP_PKEY* key) {
  if (key == nullptr) {
    return std::unexpected(InvalidArgument("the request has no usable public key"));
  }
  // keys::AlgorithmOfPublicKey knows only the RSA size devid's own keys use; devices may bring
  // any RSA key of at least 2048 bits.
  if (EVP_PKEY_is_a(key, "RSA")) {
    int bits = EVP_PKEY_get_bits(key);
    if (bits < 2048 || bits > 8192) {
      return std::unexpected(InvalidArgument("the request's key: RSA key of " +
                                             std::to_string(bits) + " bits: want 2048 to 8192"));
    }
    return Ok();
  }
  if (auto algorithm = keys::AlgorithmOfPublicKey(key); !algorithm) {
    return std::unexpected(algorithm.error().WithContext(
        "the request's key (want RSA of 2048 bits or more, EC P-256 or P-384, or Ed25519)"));
  }
  return Ok();
}

Result<std::string> CheckDeviceCsr(const pki::Csr& csr, CsrKeyUse key_use) {
  if (key_use == CsrKeyUse::kCertify) {
    DEVID_TRY(CheckSignature(csr));
    DEVID_TRY(CheckSubjectPublicKey(csr.public_key()));
  }
  DEVID_ASSIGN_OR_RETURN(std::string common_name, CheckSubject(csr));
  DEVID_TRY(CheckAttributes(csr));
  return common_name;
}

}  // namespace devid::ca
