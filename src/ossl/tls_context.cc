#include "ossl/tls_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <climits>
#include <string>
#include <vector>

#include "ossl/error.h"
#include "ossl/unique_ptr.h"

namespace devid::ossl {
namespace {

// ReadPemCertificates parses every certificate in pem, in order.
Result<std::vector<UniquePtr<X509>>> ReadPemCertificates(std::string_view pem,
                                                               std::string_view what) {
  if (pem.size() > INT_MAX) {
    return std::unexpected(InvalidArgument(std::string(what) + " is too large"));
  }
  UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return std::unexpected(ErrorFromQueue("allocating a memory BIO"));
  std::vector<UniquePtr<X509>> certificates;
  for (;;) {
    UniquePtr<X509> certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!certificate) break;
    certificates.push_back(std::move(certificate));
  }
  // The loop ends on PEM_R_NO_START_LINE at the end of the input; anything else is a bad block.
  unsigned long last = ERR_peek_last_error();
  if (last != 0 &&
      !(ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE)) {
    return std::unexpected(
        ErrorFromQueue("parsing " + std::string(what), ErrorCode::kInvalidArgument));
  }
  ERR_clear_error();
  if (certificates.empty()) {
    return std::unexpected(
        InvalidArgument("parsing " + std::string(what) + ": no PEM certificate found"));
  }
  return certificates;
}

}  // namespace

Status UseCertificateChainAndKey(SSL_CTX* ctx, std::string_view chain_pem,
                                 std::string_view key_pem) {
  if (key_pem.size() > INT_MAX) return std::unexpected(InvalidArgument("TLS key is too large"));
  UniquePtr<BIO> bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  if (!bio) return std::unexpected(ErrorFromQueue("allocating a memory BIO"));
  UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return std::unexpected(
        ErrorFromQueue("parsing the TLS private key", ErrorCode::kInvalidArgument));
  }
  return UseCertificateChainAndKey(ctx, chain_pem, key.get());
}

Status UseCertificateChainAndKey(SSL_CTX* ctx, std::string_view chain_pem, EVP_PKEY* key) {
  DEVID_ASSIGN_OR_RETURN(auto chain, ReadPemCertificates(chain_pem, "the TLS certificate chain"));
  if (SSL_CTX_use_certificate(ctx, chain.front().get()) != 1) {
    return std::unexpected(
        ErrorFromQueue("installing the TLS certificate", ErrorCode::kInvalidArgument));
  }
  SSL_CTX_clear_chain_certs(ctx);
  for (size_t i = 1; i < chain.size(); ++i) {
    if (SSL_CTX_add0_chain_cert(ctx, chain[i].get()) != 1) {
      return std::unexpected(ErrorFromQueue("installing the TLS certificate chain",
                                                  ErrorCode::kInvalidArgument));
    }
    // ctx takes ownership.
    (void)chain[i].release();
  }

  if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return std::unexpected(
        ErrorFromQueue("installing the TLS private key (does it match the certificate?)",
                             ErrorCode::kInvalidArgument));
  }
  return Ok();
}

Status TrustOnly(SSL_CTX* ctx, std::string_view bundle_pem) {
  DEVID_ASSIGN_OR_RETURN(auto anchors, ReadPemCertificates(bundle_pem, "the trust bundle"));
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  for (const auto& anchor : anchors) {
    // X509_STORE_add_cert takes its own reference.
    if (X509_STORE_add_cert(store, anchor.get()) != 1) {
      return std::unexpected(
          ErrorFromQueue("adding a trust anchor", ErrorCode::kInvalidArgument));
    }
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return Ok();
}

Status SetMinimumTls12(SSL_CTX* ctx) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
    return std::unexpected(ErrorFromQueue("setting the minimum TLS version"));
  }
  // Client-initiated renegotiation only costs the server CPU (CVE-2011-1473).
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  return Ok();
}

std::vector<std::string> PeerChainDer(SSL* ssl) {
  std::vector<std::string> out;
  auto append = [&out](X509* certificate) {
    unsigned char* der = nullptr;
    int length = i2d_X509(certificate, &der);
    if (length <= 0) return false;
    out.emplace_back(reinterpret_cast<const char*>(der), static_cast<size_t>(length));
    OPENSSL_free(der);
    return true;
  };
  // On a server the stack lacks the leaf (SSL_get_peer_cert_chain(3)); on a client it has it.
  if (SSL_is_server(ssl)) {
    X509* leaf = SSL_get0_peer_certificate(ssl);
    if (leaf == nullptr || !append(leaf)) return out;
  }
  if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl); chain != nullptr) {
    for (int i = 0; i < sk_X509_num(chain); ++i) {
      if (!append(sk_X509_value(chain, i))) break;
    }
  }
  ERR_clear_error();
  return out;
}

}  // namespace devid::ossl
