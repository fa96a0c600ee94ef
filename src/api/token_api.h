#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "api/http.h"
#include "api/route.h"
#include "api/target.h"
#include "api/token_issuer.h"
#include "attestation/symmetric_key/symmetric_key_verifier.h"
#include "base/clock.h"
#include "base/random.h"
#include "base/shared_value.h"
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
// inventory, not revoked: ca::ClientCertificateVerifier; its enrollment enabled), or with its DPS
// SAS token (attestation::SymmetricKeyVerifier, as the device API and EST check it). The audience
// is a configured service or a known device (registered, or individually enrolled); the policy
// must grant every scope word for the pair. The answer is 200 {"access_token", "token_type":
// "PoP", "expires_in", "scope"} (RFC 6749 §5.1, RFC 9200 §5.8.2) with a token bound to the client
// certificate; for a SAS-authenticated device (the Kerberos shape) the audience must be a
// symmetric-key device, the token carries a fresh 256-bit session key sealed for it (cnf.jwe) and
// the answer adds "session_key" (base64), marked sensitive. Each issued token is audited before
// it is returned; a refusal audits nothing.
class TokenApi final : public Route {
 public:
  // TokenApi keeps references to authority, registry, clock, issuer, sas_verifier and random;
  // all must outlive it. id_scope is what device SAS tokens must name.
  TokenApi(const ca::Authority& authority, registry::Registry& registry, const Clock& clock,
           const TokenIssuer& issuer, ca::TokenPolicy policy,
           attestation::SymmetricKeyVerifier& sas_verifier, std::string id_scope, Random& random)
      : registry_(registry),
        certificates_(authority, registry, clock),
        issuer_(issuer),
        policy_(std::move(policy)),
        sas_verifier_(sas_verifier),
        id_scope_(std::move(id_scope)),
        random_(random) {}

  // SetIdScope replaces the ID scope SAS tokens must name (a node re-reading its settings).
  void SetIdScope(std::string id_scope) { id_scope_.Set(std::move(id_scope)); }

  // SetAnswerWithoutBlocking lets TryHandleNow answer on the I/O thread: for a Registry that is
  // InProcess and a token signer whose key is in memory (no HSM or TPM to wait on). Off by
  // default; call before serving.
  void SetAnswerWithoutBlocking(bool enabled) { answer_without_blocking_ = enabled; }

  static constexpr size_t kMaxRequestBytes = 4096;

  bool Matches(const Target& target) const override;
  Response Handle(const Request& request, const Target& target,
                  std::string_view tracking_id) override;
  // TryHandleNow answers as Handle does, with a tracking ID of its own, when
  // SetAnswerWithoutBlocking allows it.
  std::optional<Response> TryHandleNow(const Request& request, const Target& target) override;

 private:
  // Party finds the device id: registered (with its group) or individually enrolled; kNotFound
  // when neither. When it read the enrollment, it leaves it in *enrollment_read (if not null).
  Result<ca::TokenParty> Party(const std::string& id,
                               std::optional<registry::Enrollment>* enrollment_read = nullptr);
  // CheckEnabled refuses (kPermissionDenied) a requester whose individual enrollment, or else
  // enrollment group, is disabled; enrollment_read is its enrollment when Party read it.
  Status CheckEnabled(const ca::TokenParty& device,
                      std::optional<registry::Enrollment> enrollment_read);
  // Audience resolves the requested audience to a configured service or a known device.
  Result<ca::TokenParty> Audience(const std::string& audience);
  // AuthenticateSas returns the registration ID whose DPS SAS token authorization is.
  Result<std::string> AuthenticateSas(std::string_view authorization);
  // SymmetricKey returns the key a symmetric-key device signs its SAS tokens with (its individual
  // enrollment's primary key, or the one derived from its group's); kFailedPrecondition when the
  // device has none.
  Result<std::vector<uint8_t>> SymmetricKey(const ca::TokenParty& device);

  registry::Registry& registry_;
  ca::ClientCertificateVerifier certificates_;
  const TokenIssuer& issuer_;
  ca::TokenPolicy policy_;
  bool answer_without_blocking_ = false;
  attestation::SymmetricKeyVerifier& sas_verifier_;
  SharedValue<std::string> id_scope_;
  Random& random_;
};

}  // namespace devid::api
