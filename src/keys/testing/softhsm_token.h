#pragma once

#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace devid::keys::testing {

// RunShell runs command with /bin/sh, returning its exit status and, in output, what it wrote to
// stdout and stderr. Test-only.
inline int RunShell(const std::string& command, std::string* output = nullptr) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  std::string out;
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  int status = ::pclose(pipe);
  if (output != nullptr) *output = std::move(out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// SoftHsmToken makes a fresh SoftHSM2 token store in a temporary directory, points SOFTHSM2_CONF
// at it (SoftHSM2 reads the variable at C_Initialize, so create the token before the key store)
// and initializes one token with `softhsm2-util --init-token`. The directory is removed on
// destruction. Fails the constructor's check `ok()` when softhsm2-util is missing or fails.
class SoftHsmToken {
 public:
  static constexpr const char* kLabel = "devid-test";
  static constexpr const char* kPin = "1234";
  static constexpr const char* kSoPin = "5678";

  SoftHsmToken() {
    char tmpl[] = "/tmp/devid-softhsm-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    std::filesystem::create_directories(dir_ + "/tokens");
    {
      std::ofstream conf(dir_ + "/softhsm2.conf");
      conf << "directories.tokendir = " << dir_ << "/tokens\nobjectstore.backend = file\n"
           << "log.level = ERROR\n";
    }
    {
      std::ofstream pin(pin_file());
      pin << kPin << "\n";
    }
    ::setenv("SOFTHSM2_CONF", (dir_ + "/softhsm2.conf").c_str(), 1);
    ok_ = RunShell(std::string("softhsm2-util --init-token --free --label ") + kLabel + " --pin " +
                       kPin + " --so-pin " + kSoPin,
                   &init_output_) == 0;
  }
  ~SoftHsmToken() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  SoftHsmToken(const SoftHsmToken&) = delete;
  SoftHsmToken& operator=(const SoftHsmToken&) = delete;

  bool ok() const { return ok_; }
  const std::string& init_output() const { return init_output_; }
  const std::string& dir() const { return dir_; }
  // pin_file holds the user PIN on its first line, for pin-source.
  std::string pin_file() const { return dir_ + "/pin"; }

 private:
  std::string dir_;
  std::string init_output_;
  bool ok_ = false;
};

}  // namespace devid::keys::testing
