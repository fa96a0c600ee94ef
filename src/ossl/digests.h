#pragma once

#include <openssl/types.h>

namespace devid::ossl {

// Sha256Md and Sha1Md are OpenSSL's digests fetched once from the default provider, for hashing on
// hot paths (certificate thumbprints, ETags): a legacy EVP_sha256() makes each digest look its
// implementation up again, a lock and a search that every thread contends on. Never null (a
// failed fetch aborts: OpenSSL without SHA-2 is a broken platform).
const EVP_MD* Sha256Md();
const EVP_MD* Sha1Md();

}  // namespace devid::ossl
