#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace devid::tpm {

// Bytes is an owned byte string in TPM wire order.
using Bytes = std::vector<uint8_t>;

// Writer appends TPM 2.0 canonical (big-endian) encodings (TPM 2.0 Part 2 §5, Part 1 §18).
class Writer {
 public:
  // U16 appends a UINT16; U32 a UINT32.
  Writer& U16(uint16_t v);
  Writer& U32(uint32_t v);
  // Raw appends bytes with no size.
  Writer& Raw(std::span<const uint8_t> bytes);
  Writer& Raw(std::string_view bytes);
  // B2 appends a TPM2B: UINT16 size, then the bytes. Bytes longer than 65535 are a programming
  // error (every TPM2B this library writes is far smaller) and abort.
  Writer& B2(std::span<const uint8_t> bytes);

  const Bytes& bytes() const { return out_; }
  Bytes Take() { return std::move(out_); }

 private:
  Bytes out_;
};

// Reader consumes TPM 2.0 canonical encodings from a byte string it does not own; the bytes
// must outlive it. Every read fails with kInvalidArgument naming `what` when the input is short.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : in_(in) {}

  Result<uint16_t> U16(std::string_view what);
  Result<uint32_t> U32(std::string_view what);
  // Raw reads n bytes.
  Result<std::span<const uint8_t>> Raw(size_t n, std::string_view what);
  // B2 reads a TPM2B and returns its bytes (without the size).
  Result<std::span<const uint8_t>> B2(std::string_view what);

  size_t remaining() const { return in_.size() - pos_; }
  bool done() const { return remaining() == 0; }

 private:
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
};

// B2 returns the TPM2B encoding (UINT16 size || bytes) of bytes.
Bytes B2(std::span<const uint8_t> bytes);

// Concat returns a || b.
Bytes Concat(std::span<const uint8_t> a, std::span<const uint8_t> b);

}  // namespace devid::tpm
