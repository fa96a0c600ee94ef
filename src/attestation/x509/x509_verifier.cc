#include "attestation/x509/x509_verifier.h"

#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <vector>

#include "attestation/x509/ca_reference.h"
#include "ca/inventory.h"
#include "pki/certificate.h"

namespace devid::attestation {
namespace {

ChainPolicy DevicePolicy(bool partial_chain) {
  ChainPolicy policy;
  policy.purpose = X509_PURPOSE_SSL_CLIENT;
  policy.partial_chain = partial_chain;
  // Revocation is checked after validation: devid-issued certificates in the inventory, those of
  // third-party CAs by the CrlCache, which applies the policy for a CRL it cannot get.
  policy.check_revocation = false;
  return policy;
}

}  // namespace

Result<std::vector<std::shared_ptr<const ParsedCertificate>>> X509Verifier::Anchors(
    std::initializer_list<const std::string*> pems) {
  std::vector<std::shared_ptr<const ParsedCertificate>> out;
  for (const std::string* pem : pems) {
    if (pem->empty()) continue;
    auto certificate = parsed_.FromPem(*pem);
    if (!certificate) {
      return std::unexpected(
          Internal("an enrolled certificate does not parse: " + certificate.error().message()));
    }
    out.push_back(std::move(*certificate));
  }
  return out;
}

Status X509Verifier::AddCaReferences(const registry::EnrollmentGroup& group,
                                     const pki::Certificate& leaf,
                                     std::span<const pki::Certificate> intermediates,
                                     std::vector<std::shared_ptr<const pki::Certificate>>& anchors,
                                     std::optional<Error>& ca_error,
                                     std::optional<Error>& unknown_ca_error) {
  const auto& x509 = group.settings.attestation.x509;
  for (const std::string* name : {&x509.ca_reference_primary, &x509.ca_reference_secondary}) {
    if (name->empty()) continue;
    auto verified = VerifiedCaCertificate(registry_, *name);
    if (verified) {
      anchors.push_back(std::make_shared<const pki::Certificate>(std::move(*verified)));
      continue;
    }
    if (verified.error().code() == ErrorCode::kNotFound) {
      if (!unknown_ca_error) {
        unknown_ca_error =
            Unauthenticated("enrollment group \"" + group.enrollment_group_id +
                            "\" cannot admit devices: " + verified.error().message());
      }
      continue;
    }
    if (verified.error().code() != ErrorCode::kFailedPrecondition) {
      return std::unexpected(verified.error());
    }
    // Unverified: it trusts nothing, but say so when the chain leads to it, which is what an
    // operator who forgot the proof of possession needs to hear.
    auto stored = registry_.GetCaCertificate(*name);
    if (!stored) continue;
    auto unverified = parsed_.FromDer(stored->der);
    if (!unverified) continue;
    if (VerifyChain(leaf, intermediates, std::span(&(*unverified)->certificate, 1), {},
                    clock_.Now(), DevicePolicy(/*partial_chain=*/true))) {
      ca_error = Unauthenticated("enrollment group \"" + group.enrollment_group_id +
                                 "\" cannot admit devices: " + verified.error().message());
    }
  }
  return Ok();
}

Result<VerifiedDevice> X509Verifier::Verify(std::string_view registration_id,
                                            std::span<const std::string> peer_chain_der) {
  std::vector<pki::Certificate> chain;
  for (const std::string& der : peer_chain_der) {
    auto certificate = pki::Certificate::FromDer(der);
    if (!certificate)
      return std::unexpected(Unauthenticated("a client certificate does not parse"));
    chain.push_back(std::move(*certificate));
  }
  return Verify(registration_id, chain);
}

Result<VerifiedDevice> X509Verifier::Verify(std::string_view registration_id,
                                            std::span<const pki::Certificate> peer_chain) {
  if (peer_chain.empty()) {
    return std::unexpected(Unauthenticated(
        "no credential: send a SAS token in Authorization or a TLS client certificate"));
  }
  const pki::Certificate& leaf = peer_chain.front();
  std::span<const pki::Certificate> intermediates = peer_chain.subspan(1);
  if (leaf.SubjectCommonName() != registration_id) {
    return std::unexpected(Unauthenticated("the client certificate's CN \"" +
                                           leaf.SubjectCommonName() +
                                           "\" is not the registration ID"));
  }
  // Discovery: every certificate presented is recorded, matched or not (best effort), its
  // last_seen at most once a minute per process so that repeated requests do not write.
  const std::string thumbprint = leaf.Sha256Thumbprint();
  if (observed_.RememberIfAbsent(thumbprint, true, clock_.Now(),
                                 std::chrono::system_clock::time_point::max())) {
    if (auto observed = registry_.ObserveCertificate(ca::InventoryRecord(
            leaf, registry::CertificateSource::kObserved, std::string(registration_id), ""));
        !observed) {
      observed_.Forget(thumbprint);
      spdlog::warn("recording an observed certificate failed: {}", observed.error().message());
    }
  }

  VerifiedDevice device;
  device.registration_id = std::string(registration_id);
  device.attestation_type = registry::AttestationType::kX509;
  device.x509_leaf = std::make_shared<const pki::Certificate>(leaf.Clone());
  std::optional<Error> path_error;
  std::optional<Error> ca_error;          // the chain leads to a referenced CA not yet verified
  std::optional<Error> unknown_ca_error;  // a group's caReferences names no uploaded CA
  Result<std::vector<pki::Certificate>> path = std::unexpected(Internal("no match"));

  auto enrollment = registry_.GetEnrollment(registration_id);
  if (!enrollment && enrollment.error().code() != ErrorCode::kNotFound) {
    return std::unexpected(enrollment.error());
  }
  if (enrollment && enrollment->settings.attestation.type == registry::AttestationType::kX509) {
    const auto& x509 = enrollment->settings.attestation.x509;
    DEVID_ASSIGN_OR_RETURN(auto enrolled,
                           Anchors({&x509.client_primary_pem, &x509.client_secondary_pem}));
    for (const auto& candidate : enrolled) {
      if (candidate->sha256_thumbprint != thumbprint) continue;
      path = ValidatedPath(leaf, thumbprint, intermediates, candidate->certificate);
      if (!path) return std::unexpected(path.error());
      device.enrollment = std::move(*enrollment);
      break;
    }
  }
  if (!device.enrollment) {
    DEVID_ASSIGN_OR_RETURN(auto groups, registry_.FindGroupCandidates(
                                            registration_id, registry::AttestationType::kX509));
    for (registry::EnrollmentGroup& group : groups) {
      const auto& x509 = group.settings.attestation.x509;
      DEVID_ASSIGN_OR_RETURN(auto signing,
                             Anchors({&x509.signing_primary_pem, &x509.signing_secondary_pem}));
      std::vector<std::shared_ptr<const pki::Certificate>> signers;
      for (auto& parsed : signing) {
        // Aliasing: the certificate shares ownership of its cache entry.
        signers.emplace_back(parsed, &parsed->certificate);
      }
      DEVID_TRY(AddCaReferences(group, leaf, intermediates, signers, ca_error, unknown_ca_error));
      for (const auto& signer : signers) {
        auto validated = ValidatedPath(leaf, thumbprint, intermediates, *signer);
        if (!validated) {
          // Say why the chain failed when it did reach this group's certificate.
          if (!path_error) path_error = validated.error();
          continue;
        }
        path = std::move(validated);
        device.x509_signer = signer;
        device.group = std::move(group);
        break;
      }
      if (device.group) break;
    }
  }
  if (!device.enrollment && !device.group) {
    if (ca_error) return std::unexpected(*ca_error);
    if (!path_error && unknown_ca_error) return std::unexpected(*unknown_ca_error);
    return std::unexpected(Unauthenticated(
        path_error ? "the certificate chain does not validate: " + path_error->message()
                   : "no enrollment trusts this certificate"));
  }
  // Revocation: devid's own inventory knows every certificate it issued.
  for (const pki::Certificate& certificate : *path) {
    registry::CertificateFilter filter;
    filter.sha256_thumbprint =
        certificate.get() == leaf.get() ? thumbprint : certificate.Sha256Thumbprint();
    filter.revoked = true;
    DEVID_ASSIGN_OR_RETURN(auto revoked, registry_.QueryCertificates(filter, {.max_items = 1}));
    if (!revoked.items.empty()) {
      return std::unexpected(Unauthenticated("certificate " + certificate.SubjectName() +
                                             " (serial " + certificate.SerialHex() +
                                             ") was revoked"));
    }
  }
  // Third-party CAs: their CRLs (RFC 5280 §6.3), fetched or configured.
  if (crl_cache_ != nullptr) DEVID_TRY(crl_cache_->CheckPath(*path));
  if (!device.settings().enabled) {
    return std::unexpected(PermissionDenied(
        std::string(device.enrollment ? "the enrollment" : "the enrollment group") +
        " is disabled"));
  }
  return device;
}

Result<std::vector<pki::Certificate>> X509Verifier::ValidatedPath(
    const pki::Certificate& leaf, const std::string& leaf_thumbprint,
    std::span<const pki::Certificate> intermediates, const pki::Certificate& anchor) {
  std::string key = leaf_thumbprint;
  for (const pki::Certificate& intermediate : intermediates) {
    key += ":" + intermediate.Sha256Thumbprint();
  }
  key += ">" + anchor.Sha256Thumbprint();
  auto copy = [](const std::vector<pki::Certificate>& path) {
    std::vector<pki::Certificate> out;
    out.reserve(path.size());
    for (const pki::Certificate& certificate : path) out.push_back(certificate.Clone());
    return out;
  };
  auto now = clock_.Now();
  if (auto remembered = validated_paths_.Find(key, now)) return copy(**remembered);
  DEVID_ASSIGN_OR_RETURN(auto path, VerifyChain(leaf, intermediates, std::span(&anchor, 1), {}, now,
                                                DevicePolicy(/*partial_chain=*/true)));
  auto not_after = std::chrono::system_clock::time_point::max();
  for (const pki::Certificate& certificate : path) {
    not_after = std::min(not_after, certificate.NotAfter());
  }
  validated_paths_.Remember(key, std::make_shared<const std::vector<pki::Certificate>>(copy(path)),
                            now, not_after);
  return path;
}

}  // namespace devid::attestation
