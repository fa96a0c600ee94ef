#pragma once

// Include only from a target built with cjose's include directories (devid_api, devid_sdk).
#include <cjose/cjose.h>

#include <memory>

namespace devid::pki {

// JoseDeleter releases a cjose object with the type's own release function.
struct JoseDeleter {
  void operator()(cjose_jwk_t* jwk) const { cjose_jwk_release(jwk); }
  void operator()(cjose_jwe_t* jwe) const { cjose_jwe_release(jwe); }
  void operator()(cjose_jws_t* jws) const { cjose_jws_release(jws); }
  void operator()(cjose_header_t* header) const { cjose_header_release(header); }
};

// JosePtr owns a cjose object.
template <typename T>
using JosePtr = std::unique_ptr<T, JoseDeleter>;

}  // namespace devid::pki
