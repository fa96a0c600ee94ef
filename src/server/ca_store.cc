#include "server/ca_store.h"

#include <openssl/err.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "ca/crl.h"
#include "ca/profile.h"
#include "ossl/base64.h"
#include "ossl/revocation_handles.h"
#include "server/data_dir.h"

namespace devid::server {
namespace {

using nlohmann::json;

constexpr char kManifest[] = "authority.json";

struct Entry {
  std::string certificate_file;  // relative to the store directory
  std::string key_uri;           // "" when the key is not held
};

struct Manifest {
  std::string base_url;
  std::vector<Entry> roots;
  std::vector<Entry> issuers;  // oldest first
};

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return std::unexpected(Unavailable("creating directory " + path + ": " + std::strerror(errno)));
  }
  return Ok();
}

std::vector<Entry> EntriesFromJson(const json& list) {
  std::vector<Entry> entries;
  for (const json& item : list) {
    entries.push_back({item.value("certificate", ""), item.value("key", "")});
  }
  return entries;
}

json EntriesToJson(const std::vector<Entry>& entries) {
  json list = json::array();
  for (const Entry& entry : entries) {
    list.push_back({{"certificate", entry.certificate_file}, {"key", entry.key_uri}});
  }
  return list;
}

Result<Manifest> ReadManifest(const std::string& dir) {
  auto text = ReadFile(dir + "/" + kManifest);
  if (!text) {
    return std::unexpected(NotFound("no CA in " + dir + " (run devid ca init or devid ca import)"));
  }
  json doc = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || doc.value("version", 0) != 1 ||
      !doc.contains("roots") || !doc["roots"].is_array() || !doc.contains("issuers") ||
      !doc["issuers"].is_array()) {
    return std::unexpected(InvalidArgument(dir + "/" + kManifest + " is not a devid CA manifest"));
  }
  return Manifest{doc.value("baseUrl", ""), EntriesFromJson(doc["roots"]),
                  EntriesFromJson(doc["issuers"])};
}

Status WriteManifest(const std::string& dir, const Manifest& manifest) {
  json doc = {{"version", 1},
              {"baseUrl", manifest.base_url},
              {"roots", EntriesToJson(manifest.roots)},
              {"issuers", EntriesToJson(manifest.issuers)}};
  // 0600: a pkcs11 URI may carry pin-value.
  return WriteFileAtomically(dir + "/" + kManifest, doc.dump(2) + "\n", 0600);
}

Result<pki::Certificate> ReadCertificate(const std::string& dir, const Entry& entry) {
  DEVID_ASSIGN_OR_RETURN(std::string pem, ReadFile(dir + "/" + entry.certificate_file));
  auto certificate = pki::Certificate::FromPem(pem);
  if (!certificate) return std::unexpected(certificate.error().WithContext(entry.certificate_file));
  return certificate;
}

// StoreCertificate writes certificate as certs/<role>-<key id>.pem and returns its entry.
Result<Entry> StoreCertificate(const std::string& dir, std::string_view role,
                               const pki::Certificate& certificate, std::string key_uri) {
  std::string name = "certs/" + std::string(role) + "-" + ca::KeyIdHex(certificate) + ".pem";
  DEVID_TRY(WriteFileAtomically(dir + "/" + name, certificate.ToPem(), 0644));
  return Entry{std::move(name), std::move(key_uri)};
}

// DefaultKeyUri names a new encrypted key file under keys/. Its passphrase comes from
// passphrase_env when set, else from keys/passphrase, made with 32 random bytes on first use.
Result<std::string> DefaultKeyUri(const std::string& dir, std::string_view role,
                                  const std::string& passphrase_env, Random& random) {
  keys::KeyUri uri;
  uri.scheme = "file";
  uri.path = dir + "/keys/" + std::string(role) + "-" + random.Hex(8) + ".key";
  if (!passphrase_env.empty()) {
    uri.query_attributes["passphrase-env"] = passphrase_env;
  } else {
    std::string file = dir + "/keys/passphrase";
    if (!std::filesystem::exists(file)) {
      std::vector<uint8_t> bytes = random.Bytes(32);
      std::string passphrase = ossl::Base64Encode(bytes);
      Status written = WriteFileAtomically(file, passphrase + "\n", 0600);
      OPENSSL_cleanse(passphrase.data(), passphrase.size());
      OPENSSL_cleanse(bytes.data(), bytes.size());
      DEVID_TRY(written);
    }
    uri.query_attributes["passphrase-file"] = file;
  }
  return uri.ToString();
}

Result<std::unique_ptr<keys::Key>> CreateKey(const std::string& dir,
                                             const std::string& uri_or_empty, std::string_view role,
                                             keys::KeyAlgorithm algorithm,
                                             const std::string& passphrase_env,
                                             const keys::KeyStores& key_stores, Random& random,
                                             std::string& uri) {
  uri = uri_or_empty;
  if (uri.empty()) {
    DEVID_ASSIGN_OR_RETURN(uri, DefaultKeyUri(dir, role, passphrase_env, random));
  }
  auto key = key_stores.Create(uri, algorithm);
  if (!key)
    return std::unexpected(
        key.error().WithContext("creating the " + std::string(role) + " CA key"));
  return key;
}

Status PrepareDirs(const std::string& dir) {
  // <data>/ca may hold keys of the development PKI too: owner-only, like everything we create.
  std::filesystem::path parent = std::filesystem::path(dir).parent_path();
  std::error_code ec;
  std::filesystem::create_directories(parent.parent_path(), ec);
  DEVID_TRY(MakeDir(parent.string()));
  DEVID_TRY(MakeDir(dir));
  DEVID_TRY(MakeDir(dir + "/keys"));
  return MakeDir(dir + "/certs");
}

}  // namespace

CaStore::CaStore(std::string data_dir) {
  std::error_code ec;
  std::string base = std::filesystem::absolute(data_dir, ec).lexically_normal().string();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  dir_ = base + "/ca/authority";
}

CaStore CaStore::InDirectory(const std::string& directory) {
  CaStore store;
  std::error_code ec;
  store.dir_ = std::filesystem::absolute(directory, ec).lexically_normal().string();
  while (store.dir_.size() > 1 && store.dir_.back() == '/') store.dir_.pop_back();
  return store;
}

bool CaStore::Exists() const { return std::filesystem::exists(dir_ + "/" + kManifest); }

Status CaStore::Init(const CaInitOptions& options, const keys::KeyStores& key_stores,
                     const Clock& clock, Random& random) {
  if (Exists()) {
    return std::unexpected(AlreadyExists("a CA already exists in " + dir_ +
                                         " (devid ca rollover adds an issuing CA)"));
  }
  DEVID_TRY(PrepareDirs(dir_));
  ca::AuthorityOptions authority_options{.base_url = options.base_url};
  std::string root_uri;
  DEVID_ASSIGN_OR_RETURN(auto root_key,
                         CreateKey(dir_, options.root_key_uri, "root", options.algorithm,
                                   options.passphrase_env, key_stores, random, root_uri));
  DEVID_ASSIGN_OR_RETURN(const ca::Profile* root_profile, ca::FindProfile(ca::kRootCaProfile));
  DEVID_ASSIGN_OR_RETURN(
      pki::Certificate root,
      ca::IssueCertificate(
          *root_profile,
          {.common_name = options.root_common_name, .public_key = root_key->public_key()}, nullptr,
          *root_key, authority_options, clock, random));

  std::string issuing_uri;
  DEVID_ASSIGN_OR_RETURN(auto issuing_key,
                         CreateKey(dir_, options.issuing_key_uri, "issuing", options.algorithm,
                                   options.passphrase_env, key_stores, random, issuing_uri));
  DEVID_ASSIGN_OR_RETURN(const ca::Profile* issuing_profile,
                         ca::FindProfile(ca::kIntermediateCaProfile));
  DEVID_ASSIGN_OR_RETURN(pki::Certificate issuing,
                         ca::IssueCertificate(*issuing_profile,
                                              {.common_name = options.issuing_common_name,
                                               .public_key = issuing_key->public_key()},
                                              &root, *root_key, authority_options, clock, random));

  Manifest manifest{.base_url = options.base_url};
  DEVID_ASSIGN_OR_RETURN(Entry root_entry, StoreCertificate(dir_, "root", root, root_uri));
  DEVID_ASSIGN_OR_RETURN(Entry issuing_entry,
                         StoreCertificate(dir_, "issuing", issuing, issuing_uri));
  manifest.roots.push_back(std::move(root_entry));
  manifest.issuers.push_back(std::move(issuing_entry));
  return WriteManifest(dir_, manifest);
}

Status CaStore::Import(std::string_view chain_pem, std::string_view root_pem,
                       const std::string& key_uri, const keys::KeyStores& key_stores,
                       const Clock& clock, Random& random) {
  DEVID_ASSIGN_OR_RETURN(std::vector<pki::Certificate> chain,
                         pki::Certificate::AllFromPem(chain_pem));
  std::vector<pki::Certificate> new_roots;
  if (!root_pem.empty()) {
    DEVID_ASSIGN_OR_RETURN(new_roots, pki::Certificate::AllFromPem(root_pem));
  }
  for (size_t i = 1; i < chain.size(); ++i) {
    if (X509_check_issued(chain[i].get(), chain[i].get()) != X509_V_OK) {
      return std::unexpected(InvalidArgument(
          "importing a CA: " + chain[i].SubjectName() +
          " is an intermediate between the issuing CA and its root; only two-level chains are "
          "supported"));
    }
    new_roots.push_back(std::move(chain[i]));
  }
  pki::Certificate issuing = std::move(chain.front());
  for (const pki::Certificate& root : new_roots) {
    if (X509_check_issued(root.get(), root.get()) != X509_V_OK) {
      return std::unexpected(
          InvalidArgument("importing a CA: root " + root.SubjectName() + " is not self-signed"));
    }
  }

  Manifest manifest;
  std::vector<pki::Certificate> roots;
  if (Exists()) {
    DEVID_ASSIGN_OR_RETURN(manifest, ReadManifest(dir_));
    for (const Entry& entry : manifest.roots) {
      DEVID_ASSIGN_OR_RETURN(pki::Certificate root, ReadCertificate(dir_, entry));
      roots.push_back(std::move(root));
    }
  }
  for (const pki::Certificate& root : new_roots) roots.push_back(root.Clone());
  if (roots.empty()) {
    return std::unexpected(InvalidArgument("importing a CA: no root certificate given"));
  }
  DEVID_ASSIGN_OR_RETURN(std::unique_ptr<keys::Key> key, key_stores.Load(key_uri));
  // Authority::Create checks that the key matches and that the CA chains to a root.
  std::vector<ca::IssuingCa> issuers;
  issuers.push_back({issuing.Clone(), std::move(key)});
  auto check = ca::Authority::Create({}, std::move(roots), std::move(issuers), clock, random);
  if (!check) return std::unexpected(check.error().WithContext("importing a CA"));
  // X509_V_FLAG_X509_STRICT accepted it; it must also be allowed to sign certificates.
  if (X509_check_ca(issuing.get()) == 0) {
    return std::unexpected(
        InvalidArgument("importing a CA: " + issuing.SubjectName() + " is not a CA certificate"));
  }

  DEVID_TRY(PrepareDirs(dir_));
  for (const pki::Certificate& root : new_roots) {
    DEVID_ASSIGN_OR_RETURN(Entry entry, StoreCertificate(dir_, "root", root, ""));
    bool known = false;
    for (const Entry& existing : manifest.roots)
      known |= existing.certificate_file == entry.certificate_file;
    if (!known) manifest.roots.push_back(std::move(entry));
  }
  DEVID_ASSIGN_OR_RETURN(Entry entry, StoreCertificate(dir_, "issuing", issuing, key_uri));
  manifest.issuers.push_back(std::move(entry));
  return WriteManifest(dir_, manifest);
}

Status CaStore::Rollover(const std::string& key_uri, keys::KeyAlgorithm algorithm,
                         const std::string& common_name, const std::string& passphrase_env,
                         const keys::KeyStores& key_stores, const Clock& clock, Random& random) {
  DEVID_ASSIGN_OR_RETURN(Manifest manifest, ReadManifest(dir_));
  const Entry* root_entry = nullptr;
  for (const Entry& entry : manifest.roots) {
    if (!entry.key_uri.empty()) root_entry = &entry;
  }
  if (root_entry == nullptr) {
    return std::unexpected(FailedPrecondition(
        "no root key is held here (an imported CA): import the new issuing CA instead"));
  }
  DEVID_ASSIGN_OR_RETURN(pki::Certificate root, ReadCertificate(dir_, *root_entry));
  auto root_key = key_stores.Load(root_entry->key_uri);
  if (!root_key) return std::unexpected(root_key.error().WithContext("loading the root CA key"));
  std::string issuing_uri;
  DEVID_ASSIGN_OR_RETURN(auto issuing_key,
                         CreateKey(dir_, key_uri, "issuing", algorithm, passphrase_env, key_stores,
                                   random, issuing_uri));
  DEVID_ASSIGN_OR_RETURN(const ca::Profile* profile, ca::FindProfile(ca::kIntermediateCaProfile));
  DEVID_ASSIGN_OR_RETURN(
      pki::Certificate issuing,
      ca::IssueCertificate(*profile,
                           {.common_name = common_name, .public_key = issuing_key->public_key()},
                           &root, **root_key, {.base_url = manifest.base_url}, clock, random));
  DEVID_ASSIGN_OR_RETURN(Entry entry, StoreCertificate(dir_, "issuing", issuing, issuing_uri));
  manifest.issuers.push_back(std::move(entry));
  return WriteManifest(dir_, manifest);
}

Result<std::unique_ptr<ca::Authority>> CaStore::Load(const std::string& base_url,
                                                     const keys::KeyStores& key_stores,
                                                     const Clock& clock, Random& random) const {
  DEVID_ASSIGN_OR_RETURN(Manifest manifest, ReadManifest(dir_));
  std::vector<pki::Certificate> roots;
  for (const Entry& entry : manifest.roots) {
    DEVID_ASSIGN_OR_RETURN(pki::Certificate root, ReadCertificate(dir_, entry));
    roots.push_back(std::move(root));
  }
  std::vector<ca::IssuingCa> issuers;
  for (const Entry& entry : manifest.issuers) {
    DEVID_ASSIGN_OR_RETURN(pki::Certificate certificate, ReadCertificate(dir_, entry));
    auto key = key_stores.Load(entry.key_uri);
    if (!key) {
      return std::unexpected(
          key.error().WithContext("loading the key of issuing CA " + certificate.SubjectName()));
    }
    issuers.push_back({std::move(certificate), std::move(*key)});
  }
  ca::AuthorityOptions options{.base_url = base_url.empty() ? manifest.base_url : base_url};
  return ca::Authority::Create(std::move(options), std::move(roots), std::move(issuers), clock,
                               random);
}

Status CaStore::PublishRootCrls(const keys::KeyStores& key_stores, const Clock& clock,
                                std::chrono::seconds validity, bool force) const {
  DEVID_ASSIGN_OR_RETURN(Manifest manifest, ReadManifest(dir_));
  DEVID_TRY(MakeDir(dir_ + "/crls"));
  for (const Entry& entry : manifest.roots) {
    if (entry.key_uri.empty()) continue;
    DEVID_ASSIGN_OR_RETURN(pki::Certificate root, ReadCertificate(dir_, entry));
    std::string path = dir_ + "/crls/" + ca::KeyIdHex(root) + ".crl";
    if (!force) {
      if (auto existing = ReadFile(path)) {
        const auto* p = reinterpret_cast<const unsigned char*>(existing->data());
        ossl::UniquePtr<X509_CRL> crl(
            d2i_X509_CRL(nullptr, &p, static_cast<long>(existing->size())));
        time_t half = std::chrono::system_clock::to_time_t(clock.Now() + validity / 2);
        if (crl && X509_CRL_get0_nextUpdate(crl.get()) != nullptr &&
            X509_cmp_time(X509_CRL_get0_nextUpdate(crl.get()), &half) > 0) {
          continue;
        }
        ERR_clear_error();
      }
    }
    auto key = key_stores.Load(entry.key_uri);
    if (!key) return std::unexpected(key.error().WithContext("loading the root CA key"));
    ca::CrlContent content;
    content.this_update = clock.Now();
    content.next_update = content.this_update + validity;
    content.number = ca::CrlNumber(content.this_update, 0);
    DEVID_ASSIGN_OR_RETURN(std::string der, ca::BuildCrl(root, **key, content));
    DEVID_TRY(WriteFileAtomically(path, der, 0644));
  }
  return Ok();
}

Result<std::vector<std::pair<std::string, std::string>>> CaStore::RootCrls() const {
  std::vector<std::pair<std::string, std::string>> out;
  std::error_code ec;
  for (const auto& file : std::filesystem::directory_iterator(dir_ + "/crls", ec)) {
    if (file.path().extension() != ".crl") continue;
    DEVID_ASSIGN_OR_RETURN(std::string der, ReadFile(file.path().string()));
    out.emplace_back(file.path().stem().string(), std::move(der));
  }
  return out;
}

Result<std::vector<CaSummary>> CaStore::List() const {
  DEVID_ASSIGN_OR_RETURN(Manifest manifest, ReadManifest(dir_));
  std::vector<CaSummary> out;
  for (auto [role, entries] :
       {std::pair{"root", &manifest.roots}, std::pair{"issuing", &manifest.issuers}}) {
    for (const Entry& entry : *entries) {
      DEVID_ASSIGN_OR_RETURN(pki::Certificate certificate, ReadCertificate(dir_, entry));
      std::string key = entry.key_uri;
      if (auto parsed = keys::ParseKeyUri(entry.key_uri)) key = parsed->ToString();
      out.push_back({role, certificate.SubjectName(), ca::KeyIdHex(certificate),
                     FormatUtc(certificate.NotAfter()), key});
    }
  }
  return out;
}

Result<std::unique_ptr<ServerAuthority>> OpenServerAuthority(const std::string& ca_directory,
                                                             const CaInitOptions& init,
                                                             const std::string& base_url,
                                                             keys::FileKeyStore::Getenv getenv,
                                                             const Clock& clock, Random& random) {
  CaStore store = CaStore::InDirectory(ca_directory);
  auto server_authority = std::make_unique<ServerAuthority>(std::move(getenv));
  if (!store.Exists()) {
    if (auto made = store.Init(init, server_authority->key_stores, clock, random); !made) {
      return std::unexpected(made.error().WithContext("creating the CA"));
    }
  }
  auto authority = store.Load(base_url, server_authority->key_stores, clock, random);
  if (!authority) return std::unexpected(authority.error().WithContext("loading the CA"));
  server_authority->authority = std::move(*authority);
  return server_authority;
}

}  // namespace devid::server
