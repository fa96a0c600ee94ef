#include "base/random.h"

#include "base/hex.h"

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>

namespace devid {

std::vector<uint8_t> Random::Bytes(size_t n) {
  std::vector<uint8_t> out(n);
  Fill(out.data(), n);
  return out;
}

std::string Random::Hex(size_t n) { return HexEncode(Bytes(n)); }

std::string Random::Uuid() {
  std::vector<uint8_t> b = Bytes(16);
  b[6] = (b[6] & 0x0f) | 0x40;  // RFC 9562 §5.4: version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // variant 10
  char out[37];
  std::snprintf(out, sizeof(out),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

void SecureRandom::Fill(uint8_t* out, size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1) {
    std::fputs("devid: the CSPRNG failed; refusing to continue\n", stderr);
    std::abort();
  }
}

}  // namespace devid
