#pragma once

// The device SDK's request to the token authority (docs/tokens.md): a device asks devid for a
// token that introduces it to a peer.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/result.h"
#include "devid/credential.h"
#include "devid/peer_token.h"

namespace devid::keys {
class Key;
}  // namespace devid::keys

namespace devid::sdk {

// PeerTokenRequest is who asks, over which connection, for what.
struct PeerTokenRequest {
  std::string host;
  uint16_t port = 0;
  std::string trust_bundle_pem;          // the only anchors devid's server certificate may chain to
  std::string certificate_chain_pem;     // this device's devid certificate, leaf first
  std::shared_ptr<const keys::Key> key;  // its key, which signs the TLS handshake in its store
  // A symmetric-key device instead authenticates with its DPS SAS token, signed by sas_key for
  // registration_id in id_scope (certificate_chain_pem and key empty); the peer must then be a
  // symmetric-key device too, and the answer carries a session key.
  std::shared_ptr<SasCredential> sas_key;
  std::string id_scope;
  std::string registration_id;
  std::string audience;  // the peer's device ID or a service name
  std::string scope;     // space-separated words
};

// PeerTokenResponse is what the authority granted.
struct PeerTokenResponse {
  std::string token;  // the JWT to present to the peer over mutual TLS with the same certificate
  std::string scope;
  int64_t expires_in = 0;  // seconds
  // session_key is set for a symmetric token: the key this device proves possession with
  // (ProveWithSessionKey). Keep it secret; it is as good as the token's grant until it expires.
  std::optional<PeerSessionKey> session_key;
};

// RequestPeerToken asks POST /tokens over mutual TLS (or, with sas_key, server-authenticated TLS
// and the SAS token). Fails with kUnavailable when the server
// cannot be reached, kUnauthenticated when its certificate is rejected, and otherwise with the
// server's refusal as the code its status maps to (kPermissionDenied for a policy denial,
// kNotFound for an unknown audience, ...), the message "token authority: <status> <errorCode>:
// <message>".
Result<PeerTokenResponse> RequestPeerToken(const PeerTokenRequest& request);

}  // namespace devid::sdk
