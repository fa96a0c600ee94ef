#include "base/random.h"

#include <openssl/rand.h>

#include <array>
#include <cstdio>
#include <cstdlib>

#include "base/hex.h"

namespace devid {

std::vector<uint8_t> Random::Bytes(size_t n) {
  std::vector<uint8_t> out(n);
  Fill(out.data(), n);
  return out;
}

std::string Random::Hex(size_t n) { return HexEncode(Bytes(n)); }

std::string Random::Uuid() {
  std::array<uint8_t, 16> b;
  Fill(b.data(), b.size());
  b[6] = (b[6] & 0x0f) | 0x40;  // RFC 9562 §5.4: version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // variant 10
  std::string hex = HexEncode(b);
  std::string out;
  out.reserve(36);
  out.append(hex, 0, 8).append(1, '-').append(hex, 8, 4).append(1, '-').append(hex, 12, 4);
  out.append(1, '-').append(hex, 16, 4).append(1, '-').append(hex, 20, 12);
  return out;
}

void SecureRandom::Fill(uint8_t* out, size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1) {
    std::fputs("devid: the CSPRNG failed; refusing to continue\n", stderr);
    std::abort();
  }
}

}  // namespace devid
