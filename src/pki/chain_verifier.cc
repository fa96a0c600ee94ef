#include "pki/chain_verifier.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "ossl/error.h"
#include "ossl/revocation_handles.h"
#include "ossl/unique_ptr.h"

namespace devid::pki {
namespace {

struct StackOfX509Deleter {
  void operator()(STACK_OF(X509) * stack) const { sk_X509_free(stack); }
};
struct StackOfCrlDeleter {
  void operator()(STACK_OF(X509_CRL) * stack) const { sk_X509_CRL_pop_free(stack, X509_CRL_free); }
};
struct StackOfObjectDeleter {
  void operator()(STACK_OF(ASN1_OBJECT) * stack) const {
    sk_ASN1_OBJECT_pop_free(stack, ASN1_OBJECT_free);
  }
};

// SubjectOf names a certificate the context holds, for error messages.
std::string SubjectOf(X509* certificate) {
  X509_up_ref(certificate);
  return Certificate::Adopt(ossl::UniquePtr<X509>(certificate)).SubjectName();
}

// WeakAlgorithm says why a certificate's key or signature is not acceptable, or "" when it is.
// The trust anchor's own signature is not judged (RFC 5280 §6.1: anchors are trusted as given).
std::string WeakAlgorithm(X509* certificate, bool is_anchor) {
  EVP_PKEY* key = X509_get0_pubkey(certificate);
  if (key == nullptr) return "its public key cannot be read";
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
      if (EVP_PKEY_get_bits(key) < 2048) {
        return "RSA key of " + std::to_string(EVP_PKEY_get_bits(key)) + " bits (2048 at least)";
      }
      break;
    case EVP_PKEY_EC: {
      char curve[64] = {};
      size_t length = 0;
      EVP_PKEY_get_utf8_string_param(key, "group", curve, sizeof(curve), &length);
      std::string name(curve, length);
      if (name != "prime256v1" && name != "secp384r1") {
        return "EC key on curve " + (name.empty() ? std::string("(explicit)") : name) +
               " (P-256 or P-384 only)";
      }
      break;
    }
    case EVP_PKEY_ED25519:
      break;
    default:
      return std::string("key type ") + OBJ_nid2sn(EVP_PKEY_get_base_id(key)) + " is not accepted";
  }
  if (is_anchor) return "";
  int digest = NID_undef;
  int signature_key = NID_undef;
  if (X509_get_signature_info(certificate, &digest, &signature_key, nullptr, nullptr) != 1) {
    return "its signature algorithm is not recognized";
  }
  if (digest == NID_md5 || digest == NID_sha1 || digest == NID_md5_sha1 || digest == NID_md4) {
    return std::string("signed with ") + OBJ_nid2sn(digest) + " (SHA-256 or stronger only)";
  }
  return "";
}

Status CheckAlgorithms(STACK_OF(X509) * path) {
  const int count = sk_X509_num(path);
  for (int i = 0; i < count; ++i) {
    X509* certificate = sk_X509_value(path, i);
    std::string why = WeakAlgorithm(certificate, i == count - 1);
    if (!why.empty()) {
      return std::unexpected(Unauthenticated("weak or unsupported algorithm at depth " +
                                             std::to_string(i) + " (" + SubjectOf(certificate) +
                                             "): " + why));
    }
  }
  return Ok();
}

}  // namespace

Result<std::vector<Certificate>> VerifyChain(const Certificate& leaf,
                                             std::span<const Certificate> untrusted,
                                             std::span<const Certificate> anchors,
                                             std::span<const std::string> crls,
                                             std::chrono::system_clock::time_point at,
                                             const ChainPolicy& policy) {
  ossl::UniquePtr<X509_STORE> store(X509_STORE_new());
  std::unique_ptr<STACK_OF(X509), StackOfX509Deleter> chain(sk_X509_new_null());
  std::unique_ptr<STACK_OF(X509_CRL), StackOfCrlDeleter> crl_stack(sk_X509_CRL_new_null());
  ossl::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  if (!store || !chain || !crl_stack || !ctx) {
    return std::unexpected(ossl::ErrorFromQueue("preparing path validation"));
  }
  for (const Certificate& anchor : anchors) {
    if (X509_STORE_add_cert(store.get(), anchor.get()) != 1) {
      return std::unexpected(ossl::ErrorFromQueue("adding a trust anchor"));
    }
  }
  for (const Certificate& certificate : untrusted) {
    if (sk_X509_push(chain.get(), certificate.get()) <= 0) {
      return std::unexpected(ossl::ErrorFromQueue("adding an intermediate"));
    }
  }
  for (const std::string& der : crls) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    ossl::UniquePtr<X509_CRL> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
    if (!crl || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
      ERR_clear_error();
      return std::unexpected(InvalidArgument("a CRL is not DER X.509 CRL"));
    }
    if (sk_X509_CRL_push(crl_stack.get(), crl.get()) <= 0) {
      return std::unexpected(ossl::ErrorFromQueue("adding a CRL"));
    }
    crl.release();  // owned by the stack now
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), chain.get()) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("preparing path validation"));
  }
  X509_STORE_CTX_set0_crls(ctx.get(), crl_stack.get());

  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, std::chrono::system_clock::to_time_t(at));
  X509_VERIFY_PARAM_set_depth(param, policy.max_intermediates);
  // Trust comes from the anchors given here only, tried before anything the peer sent.
  unsigned long flags = X509_V_FLAG_TRUSTED_FIRST;
  if (policy.x509_strict) flags |= X509_V_FLAG_X509_STRICT;
  if (policy.partial_chain) flags |= X509_V_FLAG_PARTIAL_CHAIN;
  if (policy.check_revocation) {
    flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL | X509_V_FLAG_EXTENDED_CRL_SUPPORT |
             X509_V_FLAG_USE_DELTAS;
  }
  flags |= X509_V_FLAG_POLICY_CHECK;
  if (policy.initial_explicit_policy) flags |= X509_V_FLAG_EXPLICIT_POLICY;
  if (policy.initial_policy_mapping_inhibit) flags |= X509_V_FLAG_INHIBIT_MAP;
  if (policy.initial_inhibit_any_policy) flags |= X509_V_FLAG_INHIBIT_ANY;
  X509_VERIFY_PARAM_set_flags(param, flags);
  if (!policy.initial_policy_set.empty()) {
    std::unique_ptr<STACK_OF(ASN1_OBJECT), StackOfObjectDeleter> oids(sk_ASN1_OBJECT_new_null());
    for (const std::string& text : policy.initial_policy_set) {
      ASN1_OBJECT* oid = OBJ_txt2obj(text.c_str(), 1);
      if (oid == nullptr || sk_ASN1_OBJECT_push(oids.get(), oid) <= 0) {
        ASN1_OBJECT_free(oid);
        return std::unexpected(InvalidArgument("policy OID \"" + text + "\" does not parse"));
      }
    }
    X509_VERIFY_PARAM_set1_policies(param, oids.get());
  }
  if (policy.purpose != 0 && X509_STORE_CTX_set_purpose(ctx.get(), policy.purpose) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("setting the certificate purpose"));
  }

  int verified = X509_verify_cert(ctx.get());
  // The CRL stack belongs to us; detach it before the context would look at it again.
  X509_STORE_CTX_set0_crls(ctx.get(), nullptr);
  if (verified != 1) {
    int error = X509_STORE_CTX_get_error(ctx.get());
    int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    X509* at_fault = X509_STORE_CTX_get_current_cert(ctx.get());
    std::string subject = at_fault ? SubjectOf(at_fault) : "";
    ERR_clear_error();
    return std::unexpected(Unauthenticated(std::string(X509_verify_cert_error_string(error)) +
                                           " at depth " + std::to_string(depth) +
                                           (subject.empty() ? "" : " (" + subject + ")")));
  }
  STACK_OF(X509)* path = X509_STORE_CTX_get0_chain(ctx.get());
  if (policy.strong_algorithms) DEVID_TRY(CheckAlgorithms(path));
  std::vector<Certificate> out;
  for (int i = 0; i < sk_X509_num(path); ++i) {
    X509* certificate = sk_X509_value(path, i);
    X509_up_ref(certificate);
    out.push_back(Certificate::Adopt(ossl::UniquePtr<X509>(certificate)));
  }
  return out;
}

}  // namespace devid::pki
