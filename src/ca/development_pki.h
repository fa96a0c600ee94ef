#pragma once

#include <string>
#include <vector>

#include "base/clock.h"
#include "base/random.h"
#include "base/result.h"
#include "pki/certificate.h"
#include "pki/private_key.h"

namespace devid::ca {

// TlsIdentity is a certificate chain (leaf first, as PEM) and its private key (PEM), ready for a
// TLS server or client context.
struct TlsIdentity {
  std::string certificate_chain_pem;
  std::string private_key_pem;
};

// DevelopmentPki is the self-contained CA a fresh `devid serve` makes for itself: an ECDSA P-256
// root that issues the TLS server certificate. Real deployments bring their own CA instead.
class DevelopmentPki {
 public:
  // Create makes a new root CA named common_name, valid for ten years from clock's now.
  static Result<DevelopmentPki> Create(std::string_view common_name, Clock& clock, Random& random);
  // Load restores a root from its PEM certificate and key.
  static Result<DevelopmentPki> Load(std::string_view certificate_pem, std::string_view key_pem,
                                     Clock& clock, Random& random);

  // IssueServer issues a P-256 TLS server certificate (serverAuth, digitalSignature) for the DNS
  // names and IP addresses given, valid for one year, with a fresh key.
  Result<TlsIdentity> IssueServer(const std::vector<std::string>& dns_names,
                                  const std::vector<std::string>& ip_addresses);
  // IssueClient issues a P-256 TLS client certificate (clientAuth) with subject CN=common_name.
  Result<TlsIdentity> IssueClient(std::string_view common_name);

  const pki::Certificate& root() const { return root_; }
  const pki::PrivateKey& root_key() const { return root_key_; }

 private:
  DevelopmentPki(pki::Certificate root, pki::PrivateKey root_key, Clock& clock, Random& random)
      : root_(std::move(root)), root_key_(std::move(root_key)), clock_(&clock), random_(&random) {}

  Result<TlsIdentity> Issue(std::string_view common_name, bool server,
                            const std::vector<std::string>& dns_names,
                            const std::vector<std::string>& ip_addresses);

  pki::Certificate root_;
  pki::PrivateKey root_key_;
  Clock* clock_;
  Random* random_;
};

}  // namespace devid::ca
