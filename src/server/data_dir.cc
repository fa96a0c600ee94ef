#include "server/data_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace devid::server {
namespace {

std::string Errno(std::string_view doing, const std::string& path) {
  return std::string(doing) + " " + path + ": " + std::strerror(errno);
}

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return std::unexpected(Unavailable(Errno("creating directory", path)));
  }
  return Ok();
}

bool Exists(const std::string& path) { return std::filesystem::exists(path); }

}  // namespace

Result<DataDir> DataDir::Prepare(const std::string& dir) {
  std::error_code ec;
  std::string path = std::filesystem::absolute(dir, ec).lexically_normal().string();
  if (ec) return std::unexpected(InvalidArgument("data dir " + dir + ": " + ec.message()));
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  DEVID_TRY(MakeDir(path));
  return DataDir(path);
}

Result<ca::TlsIdentity> DataDir::LoadOrCreateTls(const Config& config, Clock& clock,
                                                 Random& random, std::string& trust_bundle_path) {
  if (!config.tls.certificate_file.empty()) {
    DEVID_ASSIGN_OR_RETURN(std::string chain, ReadFile(config.tls.certificate_file));
    DEVID_ASSIGN_OR_RETURN(std::string key, ReadFile(config.tls.key_file));
    trust_bundle_path = config.tls.trust_bundle_file;
    return ca::TlsIdentity{std::move(chain), std::move(key)};
  }
  std::string ca_dir = path_ + "/ca";
  std::string tls_dir = path_ + "/tls";
  DEVID_TRY(MakeDir(ca_dir));
  DEVID_TRY(MakeDir(tls_dir));
  std::string root_pem_path = ca_dir + "/root.pem";
  std::string root_key_path = ca_dir + "/root.key";
  std::string cert_path = tls_dir + "/server.pem";
  std::string key_path = tls_dir + "/server.key";
  trust_bundle_path = root_pem_path;

  if (Exists(root_pem_path) && Exists(cert_path) && Exists(key_path)) {
    DEVID_ASSIGN_OR_RETURN(std::string chain, ReadFile(cert_path));
    DEVID_ASSIGN_OR_RETURN(std::string key, ReadFile(key_path));
    return ca::TlsIdentity{std::move(chain), std::move(key)};
  }
  Result<ca::DevelopmentPki> pki = std::unexpected(Internal("unset"));
  if (Exists(root_pem_path) && Exists(root_key_path)) {
    DEVID_ASSIGN_OR_RETURN(std::string root_pem, ReadFile(root_pem_path));
    DEVID_ASSIGN_OR_RETURN(std::string root_key, ReadFile(root_key_path));
    pki = ca::DevelopmentPki::Load(root_pem, root_key, clock, random);
  } else {
    pki = ca::DevelopmentPki::Create("devid development root CA", clock, random);
    if (pki) {
      DEVID_ASSIGN_OR_RETURN(std::string root_key, pki->root_key().ToPem());
      DEVID_TRY(WriteFileAtomically(root_key_path, root_key, 0600));
      DEVID_TRY(WriteFileAtomically(root_pem_path, pki->root().ToPem(), 0644));
    }
  }
  if (!pki) return std::unexpected(pki.error().WithContext("preparing the development CA"));
  std::vector<std::string> names = {"localhost"};
  if (config.server.host_name != "localhost") names.insert(names.begin(), config.server.host_name);
  DEVID_ASSIGN_OR_RETURN(ca::TlsIdentity identity, pki->IssueServer(names, {"127.0.0.1", "::1"}));
  DEVID_TRY(WriteFileAtomically(key_path, identity.private_key_pem, 0600));
  DEVID_TRY(WriteFileAtomically(cert_path, identity.certificate_chain_pem, 0644));
  return identity;
}

Status DataDir::WriteConnectionFile(const std::string& json_text) const {
  return WriteFileAtomically(path_ + "/connection.json", json_text, 0600);
}

}  // namespace devid::server
