#include "ossl/base64.h"

#include <openssl/evp.h>

namespace devid::ossl {

std::string Base64Encode(std::span<const uint8_t> data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string Base64Encode(std::string_view data) {
  return Base64Encode(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

Result<std::vector<uint8_t>> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return std::unexpected(InvalidArgument("base64 length is not a multiple of 4"));
  }
  size_t padding = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool alphabet = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/';
    if (c == '=') {
      if (i + 2 < text.size()) return std::unexpected(InvalidArgument("misplaced base64 padding"));
      ++padding;
    } else if (!alphabet || padding > 0) {
      return std::unexpected(InvalidArgument("invalid base64 character"));
    }
  }
  std::vector<uint8_t> out(3 * (text.size() / 4));
  // EVP_DecodeBlock does not strip padding, so trim by the '=' count we validated above.
  int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return std::unexpected(InvalidArgument("invalid base64"));
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

std::string Base64UrlEncode(std::span<const uint8_t> data) {
  std::string out = Base64Encode(data);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

std::string Base64UrlEncode(std::string_view data) {
  return Base64UrlEncode(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

Result<std::vector<uint8_t>> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return std::unexpected(InvalidArgument("invalid base64url length"));
  std::string standard(text);
  for (char& c : standard) {
    if (c == '+' || c == '/' || c == '=') {
      return std::unexpected(InvalidArgument("invalid base64url character"));
    }
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  standard.append((4 - standard.size() % 4) % 4, '=');
  return Base64Decode(standard);
}

}  // namespace devid::ossl
