#include "server/server_tls.h"

#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "base/file.h"
#include "ca/profile.h"
#include "ossl/unique_ptr.h"

namespace devid::server {
namespace {

// Reusable tells whether the stored server certificate can keep serving, and says why not.
std::string WhyNotReusable(const pki::Certificate& leaf, const ca::Authority& authority,
                           const std::string& host_name, const Clock& clock) {
  if (auto verified = authority.Verify(leaf, X509_PURPOSE_SSL_SERVER); !verified) {
    return "it does not verify to the CA (" + verified.error().message() + ")";
  }
  if (X509_check_host(leaf.get(), host_name.c_str(), host_name.size(), 0, nullptr) != 1 &&
      X509_check_ip_asc(leaf.get(), host_name.c_str(), 0) != 1) {
    return "it does not name " + host_name;
  }
  auto lifetime = leaf.NotAfter() - leaf.NotBefore();
  if (clock.Now() >= leaf.NotBefore() + lifetime * 2 / 3) return "it is near expiry";
  return "";
}

}  // namespace

Result<ServerTls> LoadOrIssueServerTls(const Config& config, const DataDir& dir,
                                       const ca::Authority& authority, const Clock& clock) {
  ServerTls out;
  if (!config.tls.certificate_file.empty()) {
    DEVID_ASSIGN_OR_RETURN(out.identity.certificate_chain_pem,
                           ReadFile(config.tls.certificate_file));
    DEVID_ASSIGN_OR_RETURN(out.identity.private_key_pem, ReadFile(config.tls.key_file));
    out.trust_bundle_path = config.tls.trust_bundle_file;
    return out;
  }
  std::string tls_dir = dir.path() + "/tls";
  for (const std::string& made : {tls_dir, dir.path() + "/ca"}) {
    std::error_code ec;
    std::filesystem::create_directories(made, ec);
    if (ec) return std::unexpected(Unavailable("creating " + made + ": " + ec.message()));
  }
  std::string cert_path = tls_dir + "/server.pem";
  std::string key_path = tls_dir + "/server.key";
  out.trust_bundle_path = dir.path() + "/ca/trust-bundle.pem";
  DEVID_TRY(WriteFileAtomically(out.trust_bundle_path, authority.TrustBundlePem(), 0644));

  const std::string& host = config.server.host_name;
  if (std::filesystem::exists(cert_path) && std::filesystem::exists(key_path)) {
    DEVID_ASSIGN_OR_RETURN(std::string chain, ReadFile(cert_path));
    DEVID_ASSIGN_OR_RETURN(pki::Certificate leaf, pki::Certificate::FromPem(chain));
    std::string why = WhyNotReusable(leaf, authority, host, clock);
    if (why.empty()) {
      DEVID_ASSIGN_OR_RETURN(std::string key, ReadFile(key_path));
      out.identity = {std::move(chain), std::move(key)};
      return out;
    }
    spdlog::info("devid serve: issuing a new TLS certificate: {}", why);
  }
  ca::CertificateRequest request{.common_name = host, .ip_addresses = {"127.0.0.1", "::1"}};
  ossl::UniquePtr<ASN1_OCTET_STRING> host_ip(a2i_IPADDRESS(host.c_str()));
  if (host_ip) {
    if (host != "127.0.0.1" && host != "::1") request.ip_addresses.push_back(host);
  } else {
    request.dns_names.push_back(host);
  }
  if (host != "localhost") request.dns_names.push_back("localhost");
  auto issued = ca::IssueTlsIdentity(authority, ca::kServerProfile, std::move(request));
  if (!issued) return std::unexpected(issued.error().WithContext("issuing the TLS certificate"));
  DEVID_TRY(WriteFileAtomically(key_path, issued->identity.private_key_pem, 0600));
  DEVID_TRY(WriteFileAtomically(cert_path, issued->identity.certificate_chain_pem, 0644));
  out.identity = std::move(issued->identity);
  out.issued = std::move(issued->certificate);
  return out;
}

}  // namespace devid::server
