#include "server/data_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/file.h"

namespace devid::server {
namespace {

std::string Errno(std::string_view doing, const std::string& path) {
  return std::string(doing) + " " + path + ": " + std::strerror(errno);
}

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return std::unexpected(Unavailable(Errno("creating directory", path)));
  }
  return Ok();
}

}  // namespace

Result<DataDir> DataDir::Prepare(const std::string& dir) {
  std::error_code ec;
  std::string path = std::filesystem::absolute(dir, ec).lexically_normal().string();
  if (ec) return std::unexpected(InvalidArgument("data dir " + dir + ": " + ec.message()));
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  DEVID_TRY(MakeDir(path));
  return DataDir(path);
}

Status DataDir::WriteConnectionFile(const std::string& json_text) const {
  return WriteFileAtomically(path_ + "/connection.json", json_text, 0600);
}

}  // namespace devid::server
