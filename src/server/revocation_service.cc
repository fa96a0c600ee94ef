#include "server/revocation_service.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/file.h"
#include "ca/inventory.h"
#include "ca/profile.h"
#include "keys/key_uri.h"
#include "ossl/base64.h"

namespace devid::server {
namespace {

const registry::Actor kServe{"devid serve"};

Status PrepareDirectory(const std::string& dir, Random& random) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return std::unexpected(Unavailable("creating directory " + dir + ": " + std::strerror(errno)));
  }
  std::string passphrase_file = dir + "/passphrase";
  if (std::filesystem::exists(passphrase_file)) return Ok();
  std::vector<uint8_t> bytes = random.Bytes(32);
  std::string passphrase = ossl::Base64Encode(bytes);
  Status written = WriteFileAtomically(passphrase_file, passphrase + "\n", 0600);
  OPENSSL_cleanse(passphrase.data(), passphrase.size());
  OPENSSL_cleanse(bytes.data(), bytes.size());
  return written;
}

// Usable tells whether certificate can keep signing for issuer with key: issued by it, for key,
// and with at least a third of its lifetime left (so a renewal happens well before expiry even
// when the server restarts rarely).
bool Usable(const pki::Certificate& certificate, const ca::IssuingCa& issuer, const keys::Key& key,
            std::chrono::system_clock::time_point now) {
  bool matches = EVP_PKEY_eq(X509_get0_pubkey(certificate.get()), key.public_key()) == 1 &&
                 X509_check_issued(issuer.certificate.get(), certificate.get()) == X509_V_OK &&
                 X509_verify(certificate.get(), X509_get0_pubkey(issuer.certificate.get())) == 1;
  ERR_clear_error();
  return matches && certificate.NotBefore() <= now && !ca::OcspSignerNeedsRenewal(certificate, now);
}

Result<ca::OcspSigner> LoadOrIssue(const std::string& dir, const ca::IssuingCa& issuer,
                                   const ca::Authority& authority,
                                   const keys::KeyStores& key_stores, registry::Registry& registry,
                                   const Clock& clock) {
  std::string key_id = ca::KeyIdHex(issuer.certificate);
  keys::KeyUri uri;
  uri.scheme = "file";
  uri.path = dir + "/" + key_id + ".key";
  uri.query_attributes["passphrase-file"] = dir + "/passphrase";
  auto key = std::filesystem::exists(uri.path)
                 ? key_stores.Load(uri.ToString())
                 : key_stores.Create(uri.ToString(), keys::KeyAlgorithm::kEcdsaP256);
  if (!key) {
    return std::unexpected(
        key.error().WithContext("the OCSP signing key of " + issuer.certificate.SubjectName()));
  }
  std::string certificate_file = dir + "/" + key_id + ".pem";
  if (std::filesystem::exists(certificate_file)) {
    DEVID_ASSIGN_OR_RETURN(std::string pem, ReadFile(certificate_file));
    auto certificate = pki::Certificate::FromPem(pem);
    if (certificate && Usable(*certificate, issuer, **key, clock.Now())) {
      return ca::OcspSigner{&issuer, std::move(*certificate), std::move(*key)};
    }
  }
  // CN: at most 64 characters (RFC 5280 ub-common-name); the key ID prefix tells CAs apart.
  std::string name = "devid OCSP responder " + key_id.substr(0, 16);
  auto certificate = authority.IssueWith(issuer, ca::kOcspSignerProfile,
                                         {.common_name = name, .public_key = (*key)->public_key()});
  if (!certificate) {
    return std::unexpected(certificate.error().WithContext("issuing the OCSP signer of " +
                                                           issuer.certificate.SubjectName()));
  }
  DEVID_TRY(registry.RecordCertificate(
      ca::InventoryRecord(*certificate, registry::CertificateSource::kIssued, "",
                          std::string(ca::kOcspSignerProfile)),
      registry::kAuditCertificateIssue, kServe));
  DEVID_TRY(WriteFileAtomically(certificate_file, certificate->ToPem(), 0644));
  return ca::OcspSigner{&issuer, std::move(*certificate), std::move(*key)};
}

}  // namespace

Result<std::vector<ca::OcspSigner>> LoadOrIssueOcspSigners(const std::string& ca_directory,
                                                           const ca::Authority& authority,
                                                           const keys::KeyStores& key_stores,
                                                           registry::Registry& registry,
                                                           const Clock& clock, Random& random) {
  std::string dir = ca_directory + "/ocsp";
  DEVID_TRY(PrepareDirectory(dir, random));
  std::vector<ca::OcspSigner> signers;
  for (const ca::IssuingCa& issuer : authority.issuers()) {
    // An expired CA's certificates have all expired too: nothing to answer for.
    if (clock.Now() >= issuer.certificate.NotAfter()) continue;
    DEVID_ASSIGN_OR_RETURN(ca::OcspSigner signer,
                           LoadOrIssue(dir, issuer, authority, key_stores, registry, clock));
    signers.push_back(std::move(signer));
  }
  return signers;
}

Result<std::unique_ptr<RevocationService>> StartRevocationService(const std::string& ca_directory,
                                                                  ServerAuthority& ca,
                                                                  registry::Registry& registry,
                                                                  const Clock& clock,
                                                                  Random& random) {
  CaStore store = CaStore::InDirectory(ca_directory);
  DEVID_ASSIGN_OR_RETURN(std::vector<ca::OcspSigner> signers,
                         LoadOrIssueOcspSigners(store.directory(), *ca.authority, ca.key_stores,
                                                registry, clock, random));
  auto service = std::make_unique<RevocationService>();
  service->crls = std::make_unique<ca::CrlPublisher>(*ca.authority, registry, clock);
  // Roots' CRLs are signed where the root key is: here when this data dir holds it (remade when
  // half their year has passed), else by `devid ca root-crl` on the machine that does.
  DEVID_TRY(store.PublishRootCrls(ca.key_stores, clock, kRootCrlValidity, /*force=*/false));
  DEVID_ASSIGN_OR_RETURN(auto root_crls, store.RootCrls());
  for (auto& [key_id, der] : root_crls) {
    DEVID_TRY(service->crls->AddSigned(std::move(key_id), std::move(der)));
  }
  // The server may run longer than a signer lives: the responder renews each one when it is due,
  // the same way as here (ca.authority and ca.key_stores outlive the service).
  std::string ocsp_directory = store.directory() + "/ocsp";
  ca::OcspSignerRenewer renew = [ocsp_directory, &ca, &registry,
                                 &clock](const ca::IssuingCa& issuer) -> Result<ca::OcspSigner> {
    auto signer = LoadOrIssue(ocsp_directory, issuer, *ca.authority, ca.key_stores, registry, clock);
    if (!signer) {
      spdlog::error("renewing the OCSP signer of {}: {}", issuer.certificate.SubjectName(),
                    signer.error().message());
    } else {
      spdlog::info("OCSP signer of {} renewed: certificate {} valid until {}",
                   issuer.certificate.SubjectName(), signer->certificate.SerialHex(),
                   FormatUtc(signer->certificate.NotAfter()));
    }
    return signer;
  };
  DEVID_ASSIGN_OR_RETURN(service->ocsp,
                         ca::OcspResponder::Create(*ca.authority, std::move(signers), registry,
                                                   clock, {}, std::move(renew)));
  service->api =
      std::make_unique<api::RevocationApi>(*ca.authority, *service->crls, *service->ocsp, clock);
  return service;
}

}  // namespace devid::server
