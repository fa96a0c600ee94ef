#pragma once

#include <openssl/ssl.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

// TLS context set-up shared by the server, the device SDK and the CLI. The functions configure an
// OpenSSL context through its native handle, so callers may hold it in a boost::asio::ssl::context.
namespace devid::ossl {

// UseCertificateChainAndKey installs a certificate chain (PEM, leaf first, intermediates after) and
// its private key (PEM) in ctx and checks that the key matches the leaf. It fails with
// kInvalidArgument naming what could not be parsed or did not match. ctx keeps its own references.
Status UseCertificateChainAndKey(SSL_CTX* ctx, std::string_view chain_pem,
                                 std::string_view key_pem);

// UseCertificateChainAndKey installs a certificate chain (PEM, leaf first) and a private key that
// OpenSSL holds elsewhere (for example keys::OpenSslSigningKey, whose private operations run in a
// key store) and checks the key matches the leaf. It fails with kInvalidArgument as above. ctx
// takes its own reference to key.
Status UseCertificateChainAndKey(SSL_CTX* ctx, std::string_view chain_pem, EVP_PKEY* key);

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

}  // namespace devid::ossl
