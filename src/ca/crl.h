#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "keys/key_store.h"
#include "pki/certificate.h"

namespace devid::ca {

// RevokedEntry is one revokedCertificates entry of a CRL (RFC 5280 §5.1.2.6).
struct RevokedEntry {
  std::string serial_hex;  // uppercase hex, as pki::Certificate::SerialHex
  std::chrono::system_clock::time_point revoked_at;
  int reason = 0;  // CRLReason (pki::CrlReason); 0 = unspecified, written without a reasonCode
};

// CrlContent is what one CRL says: its validity, number and entries.
struct CrlContent {
  std::chrono::system_clock::time_point this_update;
  std::chrono::system_clock::time_point next_update;
  uint64_t number = 0;  // cRLNumber (RFC 5280 §5.2.3)
  std::vector<RevokedEntry> entries;
};

// BuildCrl returns the DER of a v2 CRL (RFC 5280 §5.1) for the certificates issuer issued:
// issuer's subject as the CRL issuer, thisUpdate/nextUpdate, one entry per content.entries with a
// reasonCode entry extension unless the reason is unspecified (§5.3.1), and the
// authorityKeyIdentifier (issuer's subjectKeyIdentifier, §5.2.1) and cRLNumber (§5.2.3) CRL
// extensions, signed by key (issuer's key; it may live in an HSM). Fails with kInvalidArgument
// for a serial that is not hex or an issuer without a subjectKeyIdentifier, with the key's error,
// and kInternal when OpenSSL cannot encode.
Result<std::string> BuildCrl(const pki::Certificate& issuer, const keys::Key& key,
                             const CrlContent& content);

// CrlNumber derives a cRLNumber that grows across restarts and across nodes sharing a store,
// without storing a counter: the Unix second of this_update in the high 32 bits, the low 32 bits
// of the store's revocation version below. A later second always gives a larger number; within
// one second a newer revocation version does. Nodes must keep their clocks in step (as they must
// for certificate validity anyway).
uint64_t CrlNumber(std::chrono::system_clock::time_point this_update, int64_t revocation_version);

}  // namespace devid::ca
