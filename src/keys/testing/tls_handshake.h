#pragma once

// A TLS handshake over a socketpair between an OpenSSL server that requires a client certificate
// and a client whose key may live in a key store (openssl_signing_key.h). Test-only.

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "ossl/unique_ptr.h"

namespace devid::keys::testing {

// SelfSigned makes a certificate for public_key named common_name, signed by signer (through
// EVP_DigestSign, so a bridged key signs it through its store).
inline ossl::UniquePtr<X509> SelfSigned(EVP_PKEY* public_key, EVP_PKEY* signer,
                                        const std::string& common_name) {
  ossl::UniquePtr<X509> cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), public_key);
  if (X509_sign(cert.get(), signer, EVP_sha256()) <= 0) return nullptr;
  return cert;
}

// HandshakeResult is how each side of Handshake ended, and what the server saw.
struct HandshakeResult {
  bool client_ok = false;
  bool server_ok = false;
  ossl::UniquePtr<X509> seen_by_server;
  std::string client_error;
};

// Handshake runs a TLS handshake over a socketpair between an OpenSSL server that requires a
// client certificate and a client presenting client_cert with client_key, at version.
inline HandshakeResult Handshake(X509* client_cert, EVP_PKEY* client_key, int version) {
  HandshakeResult result;
  ossl::UniquePtr<EVP_PKEY> server_key(EVP_EC_gen("P-256"));
  ossl::UniquePtr<X509> server_cert = SelfSigned(server_key.get(), server_key.get(), "server");
  ossl::UniquePtr<SSL_CTX> server_ctx(SSL_CTX_new(TLS_server_method()));
  ossl::UniquePtr<SSL_CTX> client_ctx(SSL_CTX_new(TLS_client_method()));
  EXPECT_EQ(SSL_CTX_use_certificate(server_ctx.get(), server_cert.get()), 1);
  EXPECT_EQ(SSL_CTX_use_PrivateKey(server_ctx.get(), server_key.get()), 1);
  // The client certificate is self-signed: this test is about who signs, not about trust.
  SSL_CTX_set_verify(server_ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     [](int, X509_STORE_CTX*) { return 1; });
  for (SSL_CTX* ctx : {server_ctx.get(), client_ctx.get()}) {
    SSL_CTX_set_min_proto_version(ctx, version);
    SSL_CTX_set_max_proto_version(ctx, version);
  }
  EXPECT_EQ(SSL_CTX_use_certificate(client_ctx.get(), client_cert), 1);
  EXPECT_EQ(SSL_CTX_use_PrivateKey(client_ctx.get(), client_key), 1);
  EXPECT_EQ(SSL_CTX_check_private_key(client_ctx.get()), 1);

  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  std::thread server([&] {
    SSL* ssl = SSL_new(server_ctx.get());
    SSL_set_fd(ssl, fds[0]);
    result.server_ok = SSL_accept(ssl) == 1;
    if (result.server_ok) result.seen_by_server.reset(SSL_get1_peer_certificate(ssl));
    SSL_shutdown(ssl);
    SSL_free(ssl);
    ::close(fds[0]);
    ERR_clear_error();
  });
  SSL* ssl = SSL_new(client_ctx.get());
  SSL_set_fd(ssl, fds[1]);
  result.client_ok = SSL_connect(ssl) == 1;
  // In TLS 1.3 the client's certificate and signature follow its Finished message; the server
  // judges them when it next reads, so the client waits for its close.
  char byte = 0;
  if (result.client_ok) SSL_read(ssl, &byte, 1);
  if (!result.client_ok) {
    char text[256];
    ERR_error_string_n(ERR_peek_error(), text, sizeof(text));
    result.client_error = text;
  }
  ERR_clear_error();
  SSL_free(ssl);
  ::close(fds[1]);
  server.join();
  return result;
}

}  // namespace devid::keys::testing
