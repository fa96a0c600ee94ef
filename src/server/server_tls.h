#pragma once

#include <optional>
#include <string>

#include "base/clock.h"
#include "base/result.h"
#include "ca/authority.h"
#include "ca/tls_identity.h"
#include "server/config.h"
#include "server/data_dir.h"

namespace devid::server {

// ServerTls is the HTTPS listener's identity and the bundle its clients should trust.
struct ServerTls {
  ca::TlsIdentity identity;
  std::string trust_bundle_path;
  // issued is the certificate made at this start, for the inventory; nullopt when reused or
  // configured.
  std::optional<pki::Certificate> issued;
};

// LoadOrIssueServerTls returns the configured identity when [tls] names files. Otherwise it uses
// <data>/tls/server.pem and server.key, issued by authority under the "server" profile for
// server.host_name, localhost, 127.0.0.1 and ::1, and issues a new one when they are missing, no
// longer verify to the authority (a new CA), do not cover host_name, or have passed two thirds of
// their lifetime (so a long-running installation renews at a restart well before expiry). It
// writes the authority's roots to <data>/ca/trust-bundle.pem, the file clients trust.
Result<ServerTls> LoadOrIssueServerTls(const Config& config, const DataDir& dir,
                                       const ca::Authority& authority, const Clock& clock);

}  // namespace devid::server
