#pragma once

#include <memory>
#include <string>

#include "base/clock.h"
#include "base/random.h"
#include "ca/authority.h"
#include "keys/software/file_key_store.h"

namespace devid::ca::testing {

// MakeTestCa makes an in-memory root and issuing CA for tests and returns an Authority over
// them. The keys are fresh software keys of key_algorithm unless root_key / issuing_key are given
// (for example PKCS #11 keys, to exercise a token). Fails as IssueCertificate and
// Authority::Create.
inline Result<std::unique_ptr<Authority>> MakeTestCa(
    const Clock& clock, Random& random, AuthorityOptions options = {},
    keys::KeyAlgorithm key_algorithm = keys::KeyAlgorithm::kEcdsaP256,
    std::unique_ptr<keys::Key> root_key = nullptr,
    std::unique_ptr<keys::Key> issuing_key = nullptr) {
  if (!root_key) {
    DEVID_ASSIGN_OR_RETURN(auto pkey, keys::GenerateSoftwareKey(key_algorithm));
    DEVID_ASSIGN_OR_RETURN(root_key, keys::SoftwareKey(std::move(pkey), "test:root"));
  }
  if (!issuing_key) {
    DEVID_ASSIGN_OR_RETURN(auto pkey, keys::GenerateSoftwareKey(key_algorithm));
    DEVID_ASSIGN_OR_RETURN(issuing_key, keys::SoftwareKey(std::move(pkey), "test:issuing"));
  }
  DEVID_ASSIGN_OR_RETURN(const Profile* root_profile, FindProfile(kRootCaProfile));
  DEVID_ASSIGN_OR_RETURN(const Profile* issuing_profile, FindProfile(kIntermediateCaProfile));
  CertificateRequest root_request{.common_name = "Test Root CA",
                                  .public_key = root_key->public_key()};
  DEVID_ASSIGN_OR_RETURN(
      pki::Certificate root,
      IssueCertificate(*root_profile, root_request, nullptr, *root_key, options, clock, random));
  CertificateRequest issuing_request{.common_name = "Test Issuing CA",
                                     .public_key = issuing_key->public_key()};
  DEVID_ASSIGN_OR_RETURN(pki::Certificate issuing,
                         IssueCertificate(*issuing_profile, issuing_request, &root, *root_key,
                                          options, clock, random));
  std::vector<pki::Certificate> roots;
  roots.push_back(std::move(root));
  std::vector<IssuingCa> issuers;
  issuers.push_back(IssuingCa{std::move(issuing), std::move(issuing_key)});
  return Authority::Create(std::move(options), std::move(roots), std::move(issuers), clock, random);
}

}  // namespace devid::ca::testing
