#include "net/tls.h"

#include <openssl/x509.h>

#include "ossl/unique_ptr.h"

namespace devid::net {

std::vector<pki::Certificate> PeerChain(SSL* ssl) {
  std::vector<pki::Certificate> out;
  auto append = [&out](X509* certificate) {
    X509_up_ref(certificate);
    out.push_back(pki::Certificate::Adopt(ossl::UniquePtr<X509>(certificate)));
  };
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);
  // On a server the stack lacks the leaf (SSL_get_peer_cert_chain(3)); on a client it has it.
  if (SSL_is_server(ssl)) {
    X509* leaf = SSL_get0_peer_certificate(ssl);
    if (leaf == nullptr) return out;
    append(leaf);
  }
  if (chain != nullptr) {
    for (int i = 0; i < sk_X509_num(chain); ++i) append(sk_X509_value(chain, i));
  }
  return out;
}

}  // namespace devid::net
