#pragma once

#include <cstddef>
#include <string_view>

#include "api/http.h"
#include "api/route.h"
#include "api/target.h"
#include "api/token_issuer.h"
#include "base/clock.h"
#include "ca/authority.h"
#include "ca/client_certificate_verifier.h"
#include "ca/token_policy.h"
#include "registry/registry.h"

namespace devid::api {

// kAuditTokenIssue is the audit action of an issued peer token (object = the requesting device;
// outcome names the audience, scope, jti and expiry, never the token).
inline constexpr std::string_view kAuditTokenIssue = "token.issue";

// TokenApi is the token authority (docs/tokens.md):
//   POST /tokens   body {"audience": "<device ID or service name>", "scope": "<words>"}
// A device authenticates with the TLS client certificate devid issued it (current, in the
// inventory, not revoked: ca::ClientCertificateVerifier; its enrollment enabled), not with a SAS
// token (symmetric devices get tokens in a later version; they are told so). The audience is a
// configured service or a known device (registered, or individually enrolled); the policy must
// grant every scope word for the pair. The answer is 200 {"access_token", "token_type": "PoP",
// "expires_in", "scope"} (RFC 6749 §5.1, RFC 9200 §5.8.2) with a token bound to the client
// certificate. Each issued token is audited before it is returned; a refusal audits nothing.
class TokenApi final : public Route {
 public:
  // TokenApi keeps references to authority, registry, clock and issuer; all must outlive it.
  TokenApi(const ca::Authority& authority, registry::Registry& registry, const Clock& clock,
           const TokenIssuer& issuer, ca::TokenPolicy policy)
      : registry_(registry),
        certificates_(authority, registry, clock),
        issuer_(issuer),
        policy_(std::move(policy)) {}

  static constexpr size_t kMaxRequestBytes = 4096;

  bool Matches(const Target& target) const override;
  Response Handle(const Request& request, const Target& target,
                  std::string_view tracking_id) override;

 private:
  // Party finds the device id: registered (with its group) or individually enrolled; kNotFound
  // when neither.
  Result<ca::TokenParty> Party(const std::string& id);
  // CheckEnabled refuses (kPermissionDenied) a requester whose individual enrollment, or else
  // enrollment group, is disabled.
  Status CheckEnabled(const ca::TokenParty& device);
  // Audience resolves the requested audience to a configured service or a known device.
  Result<ca::TokenParty> Audience(const std::string& audience);

  registry::Registry& registry_;
  ca::ClientCertificateVerifier certificates_;
  const TokenIssuer& issuer_;
  ca::TokenPolicy policy_;
};

}  // namespace devid::api
