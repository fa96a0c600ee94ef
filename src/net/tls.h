#pragma once

#include <openssl/ssl.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "pki/certificate.h"

// TLS context set-up shared by the server and the client. The functions configure an OpenSSL
// context through its native handle, so callers may hold it in a boost::asio::ssl::context.
namespace devid::net {

// UseCertificateChainAndKey installs a certificate chain (PEM, leaf first, intermediates after) and
// its private key (PEM) in ctx and checks that the key matches the leaf. It fails with
// kInvalidArgument naming what could not be parsed or did not match. ctx keeps its own references.
Status UseCertificateChainAndKey(SSL_CTX* ctx, std::string_view chain_pem,
                                 std::string_view key_pem);

// TrustOnly makes the PEM certificates in bundle_pem the only trust anchors of ctx (the system
// store is never loaded) and requires peers to present a chain that verifies to one of them. It
// fails with kInvalidArgument when the bundle holds no certificate or one does not parse.
Status TrustOnly(SSL_CTX* ctx, std::string_view bundle_pem);

// SetMinimumTls12 refuses protocol versions below TLS 1.2 and TLS renegotiation on ctx.
Status SetMinimumTls12(SSL_CTX* ctx);

// PeerChainDer returns the certificate chain the peer sent on ssl, leaf first, each DER-encoded,
// or an empty vector when it sent none. On a server OpenSSL keeps the leaf apart from the rest of
// the chain; this puts it back in front.
std::vector<std::string> PeerChainDer(SSL* ssl);

// PeerChain returns the same chain as PeerChainDer, as the certificates OpenSSL parsed during the
// handshake (each one's reference count raised, so they outlive ssl), without decoding anything
// again.
std::vector<pki::Certificate> PeerChain(SSL* ssl);

}  // namespace devid::net
