#include "base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace devid {
namespace {

std::string Errno(std::string_view doing, const std::string& what) {
  return std::string(doing) + " " + what + ": " + std::strerror(errno);
}

}  // namespace

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected(NotFound(Errno("reading", path)));
  std::stringstream data;
  data << in.rdbuf();
  return data.str();
}

Status WriteSyncClose(int fd, std::string_view data, const std::string& what) {
  size_t written = 0;
  while (written < data.size()) {
    ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Error error = Unavailable(Errno("writing", what));
      ::close(fd);
      return std::unexpected(error);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Error error = Unavailable(Errno("syncing", what));
    ::close(fd);
    return std::unexpected(error);
  }
  if (::close(fd) != 0) return std::unexpected(Unavailable(Errno("closing", what)));
  return Ok();
}

Status WriteFileAtomically(const std::string& path, std::string_view data, unsigned mode) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return std::unexpected(Unavailable(Errno("creating", tmp)));
  ::fchmod(fd, mode);  // the umask must not widen or narrow what we asked for
  DEVID_TRY(WriteSyncClose(fd, data, tmp));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return std::unexpected(Unavailable(Errno("renaming to", path)));
  }
  return Ok();
}

}  // namespace devid
