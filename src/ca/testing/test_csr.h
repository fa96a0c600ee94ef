#pragma once

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string>
#include <utility>
#include <vector>

#include "ossl/unique_ptr.h"

namespace devid::ca::testing {

// TestKey generates a key for tests: "P-256", "P-384", "P-192" (and other curve names), "RSA-1024",
// "RSA-2048", "ED25519" or "ED448".
inline ossl::UniquePtr<EVP_PKEY> TestKey(const std::string& kind) {
  if (kind.starts_with("RSA-")) {
    return ossl::UniquePtr<EVP_PKEY>(EVP_RSA_gen(std::stoul(kind.substr(4))));
  }
  if (kind == "ED25519" || kind == "ED448") {
    return ossl::UniquePtr<EVP_PKEY>(EVP_PKEY_Q_keygen(nullptr, nullptr, kind.c_str()));
  }
  return ossl::UniquePtr<EVP_PKEY>(EVP_EC_gen(kind.c_str()));
}

// TestCsr describes a PKCS #10 request to build.
struct TestCsr {
  // subject entries in order, as (short name, value); {} = an empty subject.
  std::vector<std::pair<std::string, std::string>> subject = {{"CN", "device-1"}};
  EVP_PKEY* key = nullptr;  // signs and is certified; not owned; null = a fresh P-256 key
  const EVP_MD* digest = EVP_sha256();  // ignored for Ed25519 / Ed448 keys
  const char* challenge_password = nullptr;
  int extra_attribute_nid = NID_undef;  // e.g. NID_pkcs9_unstructuredName, value "x"
  // extensions to request, as (NID, X509V3 configuration value): {NID_subject_alt_name,
  // "DNS:x"}.
  std::vector<std::pair<int, std::string>> extensions;
  bool corrupt_signature = false;  // flips a bit of the signature
};

// MakeTestCsrDer builds the request spec describes and returns its DER.
inline std::string MakeTestCsrDer(const TestCsr& spec) {
  ossl::UniquePtr<EVP_PKEY> fresh;
  EVP_PKEY* key = spec.key;
  if (key == nullptr) {
    fresh = TestKey("P-256");
    key = fresh.get();
  }
  ossl::UniquePtr<X509_REQ> req(X509_REQ_new());
  for (const auto& [name, value] : spec.subject) {
    EXPECT_EQ(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req.get()), name.c_str(),
                                         MBSTRING_UTF8,
                                         reinterpret_cast<const unsigned char*>(value.data()),
                                         static_cast<int>(value.size()), -1, 0),
              1);
  }
  EXPECT_EQ(X509_REQ_set_pubkey(req.get(), key), 1);
  if (spec.challenge_password != nullptr) {
    EXPECT_EQ(X509_REQ_add1_attr_by_NID(
                  req.get(), NID_pkcs9_challengePassword, MBSTRING_ASC,
                  reinterpret_cast<const unsigned char*>(spec.challenge_password), -1),
              1);
  }
  if (spec.extra_attribute_nid != NID_undef) {
    EXPECT_EQ(X509_REQ_add1_attr_by_NID(req.get(), spec.extra_attribute_nid, MBSTRING_ASC,
                                        reinterpret_cast<const unsigned char*>("x"), -1),
              1);
  }
  if (!spec.extensions.empty()) {
    STACK_OF(X509_EXTENSION)* extensions = sk_X509_EXTENSION_new_null();
    for (const auto& [nid, value] : spec.extensions) {
      X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, nullptr, nid, value.c_str());
      EXPECT_NE(extension, nullptr) << value;
      if (extension != nullptr) sk_X509_EXTENSION_push(extensions, extension);
    }
    EXPECT_EQ(X509_REQ_add_extensions(req.get(), extensions), 1);
    sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
  }
  bool one_shot = EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448");
  EXPECT_GT(X509_REQ_sign(req.get(), key, one_shot ? nullptr : spec.digest), 0);
  unsigned char* der = nullptr;
  int len = i2d_X509_REQ(req.get(), &der);
  EXPECT_GT(len, 0);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  // The signature BIT STRING ends the DER.
  if (spec.corrupt_signature) out.back() ^= 0x01;
  return out;
}

}  // namespace devid::ca::testing
