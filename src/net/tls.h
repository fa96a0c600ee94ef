#pragma once

#include <openssl/ssl.h>

#include <vector>

#include "pki/certificate.h"

namespace devid::net {

// PeerChain returns the certificate chain the peer sent on ssl, leaf first, as the certificates
// OpenSSL parsed during the handshake (each one's reference count raised, so they outlive ssl),
// without decoding anything again. On a server OpenSSL keeps the leaf apart from the rest of the
// chain (SSL_get_peer_cert_chain(3)); this puts it back in front.
std::vector<pki::Certificate> PeerChain(SSL* ssl);

}  // namespace devid::net
