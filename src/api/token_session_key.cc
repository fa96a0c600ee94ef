#include "api/token_session_key.h"

#include <cjose/cjose.h>

#include <memory>

#include "ossl/mac.h"
#include "pki/jose_ptr.h"
#include "pki/peer_kek.h"

namespace devid::api {
namespace {

Error JoseError(const cjose_err& err) {
  return Internal(std::string("sealing a session key: ") +
                  (err.message != nullptr ? err.message : "cjose failed"));
}

}  // namespace

std::array<uint8_t, 32> PeerKek(std::span<const uint8_t> device_key, std::string_view audience) {
  return ossl::HmacSha256(device_key, pki::PeerKekMessage(audience));
}

Result<std::string> SealSessionKey(std::span<const uint8_t, 32> kek,
                                   std::span<const uint8_t> session_key) {
  cjose_err err{};
  pki::JosePtr<cjose_jwk_t> jwk(cjose_jwk_create_oct_spec(kek.data(), kek.size(), &err));
  if (!jwk) return std::unexpected(JoseError(err));
  pki::JosePtr<cjose_header_t> header(cjose_header_new(&err));
  if (!header || !cjose_header_set(header.get(), CJOSE_HDR_ALG, CJOSE_HDR_ALG_DIR, &err) ||
      !cjose_header_set(header.get(), CJOSE_HDR_ENC, CJOSE_HDR_ENC_A256GCM, &err)) {
    return std::unexpected(JoseError(err));
  }
  pki::JosePtr<cjose_jwe_t> jwe(cjose_jwe_encrypt(
      jwk.get(), header.get(), session_key.data(), session_key.size(), &err));
  if (!jwe) return std::unexpected(JoseError(err));
  char* compact = cjose_jwe_export(jwe.get(), &err);
  if (compact == nullptr) return std::unexpected(JoseError(err));
  std::string sealed(compact);
  cjose_get_dealloc()(compact);
  return sealed;
}

}  // namespace devid::api
