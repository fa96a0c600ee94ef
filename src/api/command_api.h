#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>

#include "api/http.h"
#include "api/route.h"
#include "api/service_auth.h"
#include "base/clock.h"
#include "base/result.h"
#include "ca/command_signer.h"
#include "registry/registry.h"

namespace devid::api {

// CommandSignerSource returns the command signer to sign with now (ca::JwsSignerSource).
using CommandSignerSource = ca::JwsSignerSource;

// CommandApiOptions bounds what an operator may ask to sign.
struct CommandApiOptions {
  size_t max_command_bytes = 16 * 1024;
  std::chrono::seconds default_ttl{300};
  std::chrono::seconds max_ttl{24 * 3600};
};

// CommandApi is the service API's server-signed commands (docs/commands.md):
//   POST /devices/{registrationId}/commands[?ttl=SECONDS]   body: the command, a JSON object
// The device must be registered. The store gives the command the device's next sequence number
// and audits it; the answer is 201 with {"deviceId", "sequence", "issuedAt", "expiresAt",
// "signerThumbprint", "envelope"} (the JWS), or the JWS alone as application/jose when the
// request's Accept asks for that.
class CommandApi final : public Route {
 public:
  // CommandApi keeps references; they must outlive it.
  CommandApi(registry::Registry& registry, const ServiceAuthenticator& auth,
             CommandSignerSource signer, const Clock& clock, CommandApiOptions options = {})
      : registry_(registry),
        auth_(auth),
        signer_(std::move(signer)),
        clock_(clock),
        options_(options) {}

  bool Matches(const Target& target) const override;
  Response Handle(const Request& request, const Target& target,
                  std::string_view tracking_id) override;

 private:
  registry::Registry& registry_;
  const ServiceAuthenticator& auth_;
  CommandSignerSource signer_;
  const Clock& clock_;
  CommandApiOptions options_;
};

}  // namespace devid::api
