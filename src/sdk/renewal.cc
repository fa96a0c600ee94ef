#include "devid/renewal.h"

#include <openssl/x509.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "base/file.h"
#include "keys/key_uri.h"
#include "pki/chain_verifier.h"
#include "sdk/pending_key.h"

namespace devid::sdk {
namespace {

using std::chrono::system_clock;

// kPendingSuffix marks the new certificate of a renewal not yet committed (the new key's place is
// PendingKeyUri).
constexpr std::string_view kPendingSuffix = ".next";
constexpr unsigned kCredentialFileMode = 0600;

class EstReenrollerImpl final : public Reenroller {
 public:
  explicit EstReenrollerImpl(EstClient& est) : est_(est) {}

  Result<Reenrolled> Reenroll(const pki::Certificate& current,
                              std::shared_ptr<const keys::Key> current_key,
                              const keys::Key& new_key) override {
    // The CA certificates first: an unreachable server fails before anything is issued.
    auto intermediates = est_.CaCerts();
    if (!intermediates) {
      return std::unexpected(intermediates.error().WithContext(
          "renewing " + current.SubjectName() + " (serial " + current.SerialHex() + ")"));
    }
    DEVID_ASSIGN_OR_RETURN(pki::Certificate certificate,
                           est_.SimpleReenroll(current, std::move(current_key), new_key));
    return Reenrolled{std::move(certificate), std::move(*intermediates)};
  }

 private:
  EstClient& est_;
};

bool Exists(const std::string& path) {
  std::error_code error;
  return std::filesystem::exists(path, error);
}

Status Rename(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    return std::unexpected(
        Unavailable("renaming " + from + " to " + to + ": " + std::strerror(errno)));
  }
  return Ok();
}

bool SameKey(const pki::Certificate& certificate, const keys::Key& key) {
  return EVP_PKEY_eq(X509_get0_pubkey(certificate.get()), key.public_key()) == 1;
}

// Credential is a device credential as read from its files.
struct Credential {
  std::vector<pki::Certificate> chain;  // the certificate first
  std::shared_ptr<const keys::Key> key;
};

Result<std::vector<pki::Certificate>> ReadCertificateFile(const std::string& path) {
  DEVID_ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  auto chain = pki::Certificate::AllFromPem(pem);
  if (!chain) {
    return std::unexpected(InvalidArgument(path + " holds no PEM certificate"));
  }
  return chain;
}

Result<Credential> ReadCredential(const DeviceCredential& credential,
                                  const DeviceKeyOptions& key_options) {
  auto chain = ReadCertificateFile(credential.certificate_path);
  if (!chain) return std::unexpected(chain.error().WithContext("reading the device certificate"));
  auto key = OpenDeviceKey(credential.key_uri, key_options);
  if (!key) return std::unexpected(key.error().WithContext("loading the device key"));
  if (!SameKey(chain->front(), **key)) {
    return std::unexpected(FailedPrecondition("the key " + (*key)->uri() +
                                              " is not the key of the certificate in " +
                                              credential.certificate_path));
  }
  return Credential{std::move(*chain), std::move(*key)};
}

// FinishInterruptedCommit completes or undoes a commit that did not finish (the order is:
// certificate.next written, the pending key put in the key's place (PromotePendingKey), then
// certificate.next renamed over the certificate). A certificate.next that matches the key is the
// renewed one whose key is already in place; one that matches the pending key while there is no
// key (a token whose old key was destroyed but the new one not yet relabelled) is completed;
// anything else pending was never proven and is deleted.
Status FinishInterruptedCommit(const DeviceCredential& credential, const keys::KeyUri& uri,
                               const DeviceKeyOptions& key_options) {
  std::string pending_certificate = credential.certificate_path + std::string(kPendingSuffix);
  if (Exists(pending_certificate)) {
    auto chain = ReadCertificateFile(pending_certificate);
    auto key = OpenDeviceKey(credential.key_uri, key_options);
    if (!key && key.error().code() == ErrorCode::kNotFound) {
      DEVID_ASSIGN_OR_RETURN(keys::KeyUri pending_uri, PendingKeyUri(uri));
      auto pending = OpenDeviceKey(pending_uri.ToString(), key_options);
      if (pending && chain && SameKey(chain->front(), **pending)) {
        DEVID_TRY(PromotePendingKey(uri, key_options));
        return Rename(pending_certificate, credential.certificate_path);
      }
    }
    // Without the key nothing can be decided; leave everything for a later call.
    if (!key) return std::unexpected(key.error().WithContext("loading the device key"));
    if (chain && SameKey(chain->front(), **key)) {
      DEVID_TRY(Rename(pending_certificate, credential.certificate_path));
    } else {
      std::error_code ignored;
      std::filesystem::remove(pending_certificate, ignored);
    }
  }
  // A pending key without a pending certificate was never proven.
  if (uri.scheme != "file" && uri.scheme != "pkcs11") return Ok();
  return DiscardPendingKey(uri, key_options);
}

}  // namespace

system_clock::time_point RenewalDueAt(const pki::Certificate& certificate, double fraction) {
  system_clock::duration lifetime = certificate.NotAfter() - certificate.NotBefore();
  return certificate.NotBefore() +
         std::chrono::duration_cast<system_clock::duration>(lifetime * fraction);
}

std::chrono::seconds RetryBackoff::Failed() {
  ++failures_;
  std::chrono::seconds ceiling = first_;
  for (int i = 1; i < failures_ && ceiling < max_; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, max_);
  uint64_t bits = 0;
  random_.Fill(reinterpret_cast<uint8_t*>(&bits), sizeof(bits));
  double unit = static_cast<double>(bits >> 11) / static_cast<double>(uint64_t{1} << 53);
  auto half = static_cast<double>(ceiling.count()) / 2;
  return std::chrono::seconds(static_cast<int64_t>(half + unit * half + 0.5));
}

std::unique_ptr<Reenroller> EstReenroller(EstClient& est) {
  return std::make_unique<EstReenrollerImpl>(est);
}

CertificateRenewer::CertificateRenewer(DeviceCredential credential, std::string trust_bundle_pem,
                                       RenewalPolicy policy, DeviceKeyOptions key_options,
                                       Reenroller& reenroller, const Clock& clock, Random& random)
    : credential_(std::move(credential)),
      trust_bundle_pem_(std::move(trust_bundle_pem)),
      policy_(policy),
      key_options_(std::move(key_options)),
      reenroller_(reenroller),
      clock_(clock),
      backoff_(policy.first_retry, policy.max_retry, random) {}

Result<RenewalReport> CertificateRenewer::RenewIfDue(bool force) {
  if (!(policy_.renew_at_fraction > 0 && policy_.renew_at_fraction <= 1)) {
    return std::unexpected(InvalidArgument("the renewal point must be a fraction in (0, 1]"));
  }
  DEVID_ASSIGN_OR_RETURN(keys::KeyUri uri, keys::ParseKeyUri(credential_.key_uri));
  if (policy_.new_key) {
    DEVID_TRY(PendingKeyUri(uri));  // a store that can hold a second key
    // The new key is reached by its URI's text, in which a pin-value is redacted.
    if (uri.QueryAttribute("pin-value")) {
      return std::unexpected(FailedPrecondition(
          "a new key in the token needs the PIN in a file (pin-source=FILE), not pin-value"));
    }
  }
  DEVID_TRY(FinishInterruptedCommit(credential_, uri, key_options_));
  DEVID_ASSIGN_OR_RETURN(Credential current, ReadCredential(credential_, key_options_));
  const pki::Certificate& certificate = current.chain.front();
  RenewalReport report{.subject = certificate.SubjectName(),
                       .serial = certificate.SerialHex(),
                       .key_uri = uri.ToString(),
                       .not_after = certificate.NotAfter(),
                       .due = RenewalDueAt(certificate, policy_.renew_at_fraction)};
  system_clock::time_point now = clock_.Now();
  if (now < next_attempt_) {
    report.due = next_attempt_;
    return report;
  }
  if (!force && now < report.due) return report;
  auto renewed = Renew(certificate, current.chain, current.key);
  if (!renewed) {
    next_attempt_ = now + backoff_.Failed();
    return std::unexpected(renewed.error());
  }
  backoff_.Succeeded();
  next_attempt_ = {};
  return renewed;
}

Result<RenewalReport> CertificateRenewer::Renew(const pki::Certificate& current,
                                                const std::vector<pki::Certificate>& current_chain,
                                                std::shared_ptr<const keys::Key> current_key) {
  DEVID_ASSIGN_OR_RETURN(keys::KeyUri uri, keys::ParseKeyUri(credential_.key_uri));
  std::shared_ptr<const keys::Key> new_key = current_key;
  bool pending_key = false;  // a new key awaits its commit at PendingKeyUri(uri)
  if (policy_.new_key) {
    DEVID_ASSIGN_OR_RETURN(keys::KeyUri next, PendingKeyUri(uri));
    std::string next_uri = next.ToString();
    auto created =
        CreateDeviceKey(next_uri, keys::KeyAlgorithmName(current_key->algorithm()), key_options_);
    if (!created) return std::unexpected(created.error().WithContext("making the new key"));
    pending_key = true;
    auto opened = OpenDeviceKey(next_uri, key_options_);
    if (!opened) {
      (void)DiscardPendingKey(uri, key_options_);
      return std::unexpected(opened.error().WithContext("opening the new key"));
    }
    new_key = std::move(*opened);
  }
  std::string pending_certificate = credential_.certificate_path + std::string(kPendingSuffix);
  // discard undoes a renewal that failed before its commit; a key it cannot delete now is deleted
  // by the next call (FinishInterruptedCommit).
  auto discard = [&] {
    std::error_code ignored;
    if (pending_key) (void)DiscardPendingKey(uri, key_options_);
    std::filesystem::remove(pending_certificate, ignored);
  };

  // Obtain and prove the new certificate before anything of the old credential is touched.
  auto answer = reenroller_.Reenroll(current, current_key, *new_key);
  if (!answer) {
    discard();
    return std::unexpected(answer.error());
  }
  const pki::Certificate& renewed = answer->certificate;
  std::string refusal = "the renewed certificate (serial " + renewed.SerialHex() + ") ";
  if (!SameKey(renewed, *new_key)) {
    discard();
    return std::unexpected(FailedPrecondition(refusal + "is not for the key " + new_key->uri()));
  }
  if (X509_NAME_cmp(X509_get_subject_name(renewed.get()), X509_get_subject_name(current.get())) !=
      0) {
    discard();
    return std::unexpected(FailedPrecondition(refusal + "names " + renewed.SubjectName() +
                                              ", not this device's " + current.SubjectName()));
  }
  auto anchors = pki::Certificate::AllFromPem(trust_bundle_pem_);
  if (!anchors) {
    discard();
    return std::unexpected(InvalidArgument("the trust bundle holds no PEM certificate"));
  }
  std::vector<pki::Certificate> untrusted;
  for (const pki::Certificate& ca : answer->intermediates) untrusted.push_back(ca.Clone());
  for (size_t i = 1; i < current_chain.size(); ++i) untrusted.push_back(current_chain[i].Clone());
  pki::ChainPolicy chain_policy;
  chain_policy.purpose = X509_PURPOSE_SSL_CLIENT;
  chain_policy.check_revocation = false;  // just issued; the device holds no CRL
  auto path = pki::VerifyChain(renewed, untrusted, *anchors, {}, clock_.Now(), chain_policy);
  if (!path) {
    discard();
    return std::unexpected(Unauthenticated(
        refusal +
        "does not verify to your trust bundle for TLS client use: " + path.error().message()));
  }

  // Commit: the certificate with the CA certificates of its path (not the anchor), then the key.
  std::string pem;
  for (size_t i = 0; i + 1 < path->size(); ++i) pem += (*path)[i].ToPem();
  if (!pending_key) {
    DEVID_TRY(WriteFileAtomically(credential_.certificate_path, pem, kCredentialFileMode));
  } else {
    if (auto written = WriteFileAtomically(pending_certificate, pem, kCredentialFileMode);
        !written) {
      discard();
      return std::unexpected(written.error());
    }
    if (auto promoted = PromotePendingKey(uri, key_options_); !promoted) {
      // Where the old key is already gone, certificate.next and the new key stay for the next
      // call to complete the commit.
      if (auto old_key = OpenDeviceKey(credential_.key_uri, key_options_);
          old_key && SameKey(current, **old_key)) {
        discard();
      }
      return std::unexpected(promoted.error().WithContext("putting the new key in place"));
    }
    // From here the new key is in place: a failure leaves certificate.next for the next call
    // (FinishInterruptedCommit) to complete.
    DEVID_TRY(Rename(pending_certificate, credential_.certificate_path));
  }
  return RenewalReport{.renewed = true,
                       .subject = renewed.SubjectName(),
                       .serial = renewed.SerialHex(),
                       .key_uri = uri.ToString(),
                       .not_after = renewed.NotAfter(),
                       .due = RenewalDueAt(renewed, policy_.renew_at_fraction)};
}

}  // namespace devid::sdk
