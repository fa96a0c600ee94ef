#include "ossl/error.h"

#include <openssl/err.h>

#include <string>

namespace devid::ossl {

Error ErrorFromQueue(std::string_view doing, ErrorCode code) {
  std::string message(doing);
  unsigned long e = ERR_get_error();
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    message += ": ";
    message += buf;
  }
  ERR_clear_error();
  return Error(code, std::move(message));
}

}  // namespace devid::ossl
