#include "server/command_signing.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/file.h"
#include "ca/inventory.h"
#include "ca/profile.h"
#include "ca/token_signer.h"
#include "keys/key_uri.h"
#include "ossl/base64.h"

namespace devid::server {
namespace {

const registry::Actor kServe{"devid serve"};

// DefaultKeyUri names the encrypted file key under <ca>/<name>/, with a random passphrase file
// beside it made on first use.
Result<std::string> DefaultKeyUri(const SignerFiles& files, Random& random) {
  std::string dir = files.ca_directory + "/" + files.name;
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return std::unexpected(Unavailable("creating directory " + dir + ": " + std::strerror(errno)));
  }
  std::string passphrase_file = dir + "/passphrase";
  if (!std::filesystem::exists(passphrase_file)) {
    std::vector<uint8_t> bytes = random.Bytes(32);
    std::string passphrase = ossl::Base64Encode(bytes);
    Status written = WriteFileAtomically(passphrase_file, passphrase + "\n", 0600);
    OPENSSL_cleanse(passphrase.data(), passphrase.size());
    OPENSSL_cleanse(bytes.data(), bytes.size());
    DEVID_TRY(written);
  }
  keys::KeyUri uri;
  uri.scheme = "file";
  uri.path = dir + "/signer.key";
  uri.query_attributes["passphrase-file"] = passphrase_file;
  return uri.ToString();
}

Result<std::unique_ptr<keys::Key>> LoadOrCreateKey(const std::string& uri, const SignerFiles& files,
                                                   const keys::KeyStores& key_stores) {
  auto key = key_stores.Load(uri);
  if (!key && key.error().code() == ErrorCode::kNotFound) {
    key = key_stores.Create(uri, keys::KeyAlgorithm::kEcdsaP256);
  }
  if (!key) return std::unexpected(key.error().WithContext("opening the " + files.name + " key"));
  return key;
}

}  // namespace

SignerFiles TokenSignerFiles(std::string key_uri, std::string ca_directory,
                             std::string certificate_file) {
  return {.key_uri = std::move(key_uri),
          .ca_directory = std::move(ca_directory),
          .certificate_file = std::move(certificate_file),
          .name = std::string(ca::kTokenSignerProfile),
          .common_name = "devid token signer",
          .typ = std::string(ca::kPeerTokenType)};
}

Result<std::unique_ptr<ca::JwsSigner>> LoadOrIssueSigner(const SignerFiles& files,
                                                         const ca::Authority& authority,
                                                         const keys::KeyStores& key_stores,
                                                         registry::Registry& registry,
                                                         const Clock& clock, Random& random) {
  std::string uri = files.key_uri;
  if (uri.empty()) {
    DEVID_ASSIGN_OR_RETURN(uri, DefaultKeyUri(files, random));
  }
  DEVID_ASSIGN_OR_RETURN(std::unique_ptr<keys::Key> key, LoadOrCreateKey(uri, files, key_stores));
  if (std::filesystem::exists(files.certificate_file)) {
    DEVID_ASSIGN_OR_RETURN(std::string pem, ReadFile(files.certificate_file));
    if (auto certificate = pki::Certificate::FromPem(pem);
        certificate && authority.Verify(*certificate)) {
      auto signer = ca::JwsSigner::Create(std::move(*certificate), std::move(key), files.typ);
      if (signer && !(*signer)->NeedsRenewal(clock.Now())) return signer;
      // Another key, or due: issue anew for the key we hold.
      DEVID_ASSIGN_OR_RETURN(key, LoadOrCreateKey(uri, files, key_stores));
    }
  }
  auto certificate = authority.Issue(
      files.name, {.common_name = files.common_name, .public_key = key->public_key()});
  if (!certificate) {
    return std::unexpected(certificate.error().WithContext("issuing the " + files.name));
  }
  DEVID_TRY(registry.RecordCertificate(
      ca::InventoryRecord(*certificate, registry::CertificateSource::kIssued, "", files.name),
      registry::kAuditCertificateIssue, kServe));
  DEVID_TRY(WriteFileAtomically(files.certificate_file, certificate->ToPem(), 0644));
  return ca::JwsSigner::Create(std::move(*certificate), std::move(key), files.typ);
}

RenewingSigner::RenewingSigner(SignerFiles files, std::unique_ptr<ca::JwsSigner> signer,
                               const ca::Authority& authority, const keys::KeyStores& key_stores,
                               registry::Registry& registry, const Clock& clock, Random& random)
    : files_(std::move(files)),
      authority_(authority),
      key_stores_(key_stores),
      registry_(registry),
      clock_(clock),
      random_(random),
      signer_(std::move(signer)) {}

Result<std::shared_ptr<const ca::JwsSigner>> RenewingSigner::Current() {
  std::lock_guard lock(mutex_);
  auto now = clock_.Now();
  if (!signer_->NeedsRenewal(now) || (now < retry_at_ && now < signer_->certificate().NotAfter())) {
    return signer_;
  }
  auto renewed = LoadOrIssueSigner(files_, authority_, key_stores_, registry_, clock_, random_);
  if (renewed) {
    signer_ = std::move(*renewed);
    spdlog::info("{} renewed: certificate {} valid until {}", files_.name,
                 signer_->certificate().SerialHex(), FormatUtc(signer_->certificate().NotAfter()));
    return signer_;
  }
  spdlog::error("renewing the {}: {}", files_.name, renewed.error().message());
  retry_at_ = now + kRenewalRetry;
  if (now < signer_->certificate().NotAfter()) return signer_;
  return std::unexpected(renewed.error());
}

}  // namespace devid::server
