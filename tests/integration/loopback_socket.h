#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

namespace devid::testing {

// LoopbackSocket is a TCP socket bound to 127.0.0.1:port (0: a free one the kernel picks) for as
// long as it lives, listening when asked: a port taken on purpose, or a way to find a free one.
class LoopbackSocket {
 public:
  explicit LoopbackSocket(uint16_t port = 0, bool listening = false) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    socklen_t length = sizeof address;
    if (fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
        (!listening || ::listen(fd_, 1) == 0) &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      port_ = ntohs(address.sin_port);
    }
  }
  LoopbackSocket(const LoopbackSocket&) = delete;
  LoopbackSocket& operator=(const LoopbackSocket&) = delete;
  ~LoopbackSocket() {
    if (fd_ >= 0) ::close(fd_);
  }

  // port is the bound port, 0 when binding failed (the port was taken).
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago (0 when none was found).
inline uint16_t FreePort() { return LoopbackSocket().port(); }

}  // namespace devid::testing
