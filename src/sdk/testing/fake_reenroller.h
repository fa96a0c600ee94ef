#pragma once

// Test doubles for renewal: a fixed "random" source and a CA that renews from a test authority,
// or answers as a broken or hostile CA would.

#include <openssl/evp.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "base/random.h"
#include "ca/authority.h"
#include "ca/profile.h"
#include "devid/renewal.h"

namespace devid::sdk::testing {

// FixedRandom returns the same byte everywhere: 0x00 draws the shortest retry wait, 0xff the
// longest.
class FixedRandom final : public Random {
 public:
  explicit FixedRandom(uint8_t byte) : byte_(byte) {}
  void Fill(uint8_t* out, size_t n) override { std::fill(out, out + n, byte_); }
  uint8_t byte_;
};

// FakeReenroller issues from a test CA, or answers as a broken or hostile CA would.
class FakeReenroller final : public Reenroller {
 public:
  enum class Answer { kIssue, kUnreachable, kOtherKey, kOtherSubject, kOtherCa };

  FakeReenroller(const ca::Authority& authority, const ca::Authority& other)
      : authority_(authority), other_(other) {}

  Result<Reenrolled> Reenroll(const pki::Certificate& current,
                              std::shared_ptr<const keys::Key> current_key,
                              const keys::Key& new_key) override {
    ++calls;
    last_new_key_is_current = current_key.get() == &new_key;
    if (answer == Answer::kUnreachable) {
      return std::unexpected(Unavailable("connecting to https://est.example:443: refused"));
    }
    ossl::UniquePtr<EVP_PKEY> other_key(EVP_EC_gen("P-256"));
    ca::CertificateRequest request{
        .common_name = answer == Answer::kOtherSubject ? "device-2" : current.SubjectCommonName(),
        .public_key = answer == Answer::kOtherKey ? other_key.get() : new_key.public_key(),
        .validity = std::chrono::hours(30 * 24)};
    const ca::Authority& issuer = answer == Answer::kOtherCa ? other_ : authority_;
    DEVID_ASSIGN_OR_RETURN(pki::Certificate issued,
                           issuer.Issue(ca::kDeviceClientProfile, request));
    std::vector<pki::Certificate> intermediates;
    intermediates.push_back(issuer.issuers().front().certificate.Clone());
    return Reenrolled{std::move(issued), std::move(intermediates)};
  }

  Answer answer = Answer::kIssue;
  int calls = 0;
  bool last_new_key_is_current = false;

 private:
  const ca::Authority& authority_;
  const ca::Authority& other_;
};

}  // namespace devid::sdk::testing
