#include "registry/ca_certificate_store.h"

#include <string>

namespace devid::registry::ca_certificate_store {

Status ValidateUpload(const CaCertificate& certificate) {
  if (certificate.name.empty()) {
    return std::unexpected(InvalidArgument("the CA certificate name is empty"));
  }
  if (certificate.der.empty() || certificate.sha256_thumbprint.empty()) {
    return std::unexpected(InvalidArgument("storing CA certificate \"" + certificate.name +
                                           "\": the certificate or its thumbprint is empty"));
  }
  return Ok();
}

CaCertificate Unverified(const CaCertificate& certificate) {
  CaCertificate stored = certificate;
  stored.verified = false;
  stored.verification_code_hash.clear();
  stored.verification_code_expires = {};
  return stored;
}

Error VerificationRefusal(const CaCertificate& current, std::string_view sha256_thumbprint,
                          std::string_view code_hash, std::chrono::system_clock::time_point now) {
  std::string prefix = "verifying CA certificate \"" + current.name + "\": ";
  if (current.sha256_thumbprint != sha256_thumbprint) {
    return FailedPrecondition(prefix + "the certificate was replaced; generate a new code");
  }
  if (current.verification_code_hash.empty()) {
    return FailedPrecondition(prefix +
                              "no verification code is pending (never generated, or already used)");
  }
  if (current.verification_code_expires <= now) {
    return FailedPrecondition(prefix + "the verification code has expired; generate a new one");
  }
  (void)code_hash;  // the only condition left
  return FailedPrecondition(prefix + "the subject CN is not the pending verification code");
}

std::string ReferencedMessage(std::string_view name, std::string_view group_id) {
  return "deleting CA certificate \"" + std::string(name) + "\": enrollment group \"" +
         std::string(group_id) +
         "\" references it in caReferences; change or delete the group first";
}

}  // namespace devid::registry::ca_certificate_store
