#include "tpm/marshal.h"

#include <cstdlib>
#include <string>

namespace devid::tpm {

Writer& Writer::U16(uint16_t v) {
  out_.push_back(static_cast<uint8_t>(v >> 8));
  out_.push_back(static_cast<uint8_t>(v));
  return *this;
}

Writer& Writer::U32(uint32_t v) {
  U16(static_cast<uint16_t>(v >> 16));
  return U16(static_cast<uint16_t>(v));
}

Writer& Writer::Raw(std::span<const uint8_t> bytes) {
  out_.insert(out_.end(), bytes.begin(), bytes.end());
  return *this;
}

Writer& Writer::Raw(std::string_view bytes) {
  out_.insert(out_.end(), bytes.begin(), bytes.end());
  return *this;
}

Writer& Writer::B2(std::span<const uint8_t> bytes) {
  if (bytes.size() > 0xffff) std::abort();
  U16(static_cast<uint16_t>(bytes.size()));
  return Raw(bytes);
}

Result<uint16_t> Reader::U16(std::string_view what) {
  DEVID_ASSIGN_OR_RETURN(auto b, Raw(2, what));
  return static_cast<uint16_t>(b[0] << 8 | b[1]);
}

Result<uint32_t> Reader::U32(std::string_view what) {
  DEVID_ASSIGN_OR_RETURN(auto b, Raw(4, what));
  return static_cast<uint32_t>(b[0]) << 24 | static_cast<uint32_t>(b[1]) << 16 |
         static_cast<uint32_t>(b[2]) << 8 | b[3];
}

Result<std::span<const uint8_t>> Reader::Raw(size_t n, std::string_view what) {
  if (remaining() < n) {
    return std::unexpected(InvalidArgument("reading " + std::string(what) + ": " +
                                           std::to_string(n) + " bytes needed, " +
                                           std::to_string(remaining()) + " left"));
  }
  auto out = in_.subspan(pos_, n);
  pos_ += n;
  return out;
}

Result<std::span<const uint8_t>> Reader::B2(std::string_view what) {
  DEVID_ASSIGN_OR_RETURN(uint16_t size, U16(what));
  return Raw(size, what);
}

Bytes B2(std::span<const uint8_t> bytes) { return Writer().B2(bytes).Take(); }

Bytes Concat(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  Bytes out(a.begin(), a.end());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

}  // namespace devid::tpm
