#include "ca/der.h"

namespace devid::ca::der {

std::string Tlv(int tag, int tag_class, bool constructed, std::string_view content) {
  int length = static_cast<int>(content.size());
  int total = ASN1_object_size(constructed ? 1 : 0, length, tag);
  std::string out(static_cast<size_t>(total - length), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  ASN1_put_object(&p, constructed ? 1 : 0, length, tag, tag_class);
  out += content;
  return out;
}

}  // namespace devid::ca::der
