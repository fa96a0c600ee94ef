#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace devid {

// Random produces unpredictable bytes. Keys, serials, operation ids and etags come from it, so tests
// can make them repeatable.
class Random {
 public:
  virtual ~Random() = default;
  // Fill writes n random bytes to out. A CSPRNG failure is a programming or platform fault and
  // aborts: no key may ever be made from bad randomness.
  virtual void Fill(uint8_t* out, size_t n) = 0;

  std::vector<uint8_t> Bytes(size_t n);
  // Hex returns n random bytes as lowercase hex.
  std::string Hex(size_t n);
  // Uuid returns a random (version 4) UUID in its canonical text form.
  std::string Uuid();
};

// SecureRandom draws from OpenSSL's CSPRNG.
class SecureRandom final : public Random {
 public:
  void Fill(uint8_t* out, size_t n) override;
};

}  // namespace devid
