#include "server_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

extern char** environ;

namespace devid::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kStartTimeout = std::chrono::seconds(30);
constexpr auto kStopTimeout = std::chrono::seconds(30);
constexpr auto kCommandTimeout = std::chrono::seconds(60);
constexpr std::string_view kListeningLine = "devid serve: listening on ";

std::string Errno(std::string_view doing) {
  return std::string(doing) + ": " + std::strerror(errno);
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected(NotFound(Errno("reading " + path)));
  std::stringstream data;
  data << in.rdbuf();
  return data.str();
}

Status WriteFile(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  if (!out) return std::unexpected(Unavailable(Errno("writing " + path)));
  return Ok();
}

Result<std::string> MakeTempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string path = std::string(tmp && *tmp ? tmp : "/tmp") + "/devid-test-XXXXXX";
  if (::mkdtemp(path.data()) == nullptr) return std::unexpected(Unavailable(Errno("mkdtemp")));
  return path;
}

// Environment returns the test's environment with additions ("NAME=value") replacing or adding.
std::vector<std::string> Environment(const std::vector<std::string>& additions) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string_view name = entry.substr(0, entry.find('=') + 1);
    bool replaced = false;
    for (const auto& add : additions) replaced = replaced || add.starts_with(name);
    if (!replaced) env.emplace_back(entry);
  }
  env.insert(env.end(), additions.begin(), additions.end());
  return env;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// FileActions owns a posix_spawn_file_actions_t.
class FileActions {
 public:
  FileActions() { posix_spawn_file_actions_init(&actions_); }
  ~FileActions() { posix_spawn_file_actions_destroy(&actions_); }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

Result<pid_t> Spawn(std::vector<std::string> argv, const std::vector<std::string>& env_additions,
                    FileActions& actions) {
  std::vector<std::string> env = Environment(env_additions);
  std::vector<char*> c_argv = CStrings(argv);
  std::vector<char*> c_env = CStrings(env);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, c_argv[0], actions.get(), nullptr, c_argv.data(), c_env.data());
  if (rc != 0) {
    return std::unexpected(
        Unavailable("spawning " + argv[0] + ": " + std::string(std::strerror(rc))));
  }
  return pid;
}

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// WaitWithTimeout reaps pid, returning its exit code, or nullopt when it is still running at the
// deadline.
std::optional<int> WaitWithTimeout(pid_t pid, Clock::time_point deadline) {
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return ExitCode(status);
    if (r < 0 && errno != EINTR) return -1;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int PollMillis(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, 100));
}

}  // namespace

CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::vector<std::string>& env) {
  CommandResult result;
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    result.err = Errno("pipe2");
    return result;
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    result.err = Errno("pipe2");
    ::close(out[0]);
    ::close(out[1]);
    return result;
  }
  FileActions actions;
  posix_spawn_file_actions_addopen(actions.get(), 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(actions.get(), out[1], 1);
  posix_spawn_file_actions_adddup2(actions.get(), err[1], 2);
  auto pid = Spawn(argv, env, actions);
  ::close(out[1]);
  ::close(err[1]);
  if (!pid) {
    ::close(out[0]);
    ::close(err[0]);
    result.err = pid.error().message();
    return result;
  }
  auto deadline = Clock::now() + kCommandTimeout;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0 && Clock::now() < deadline) {
    if (::poll(fds, 2, PollMillis(deadline)) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& fd : fds) {
    if (fd.fd >= 0) ::close(fd.fd);
  }
  std::optional<int> code = WaitWithTimeout(*pid, deadline);
  if (!code) {
    ::kill(*pid, SIGKILL);
    int status = 0;
    ::waitpid(*pid, &status, 0);
    code = ExitCode(status);
  }
  result.exit_code = *code;
  return result;
}

Result<ServerProcess> ServerProcess::Start(std::vector<std::string> extra_args) {
  ServerProcessOptions options;
  options.args = std::move(extra_args);
  return Start(std::move(options));
}

Result<ServerProcess> ServerProcess::Start(ServerProcessOptions options) {
  ServerProcess server;
  DEVID_ASSIGN_OR_RETURN(server.root_, MakeTempDir());
  server.options_ = std::move(options);
  if (!server.options_.config_toml.empty()) {
    DEVID_TRY(WriteFile(server.root_ + "/devid.toml", server.options_.config_toml));
  }
  if (server.options_.prepare) DEVID_TRY(server.options_.prepare(server.data_dir()));
  DEVID_TRY(server.Launch());
  return server;
}

ServerProcess::ServerProcess(ServerProcess&& other) noexcept { *this = std::move(other); }

ServerProcess& ServerProcess::operator=(ServerProcess&& other) noexcept {
  if (this == &other) return *this;
  Cleanup();
  root_ = std::exchange(other.root_, {});
  options_ = std::move(other.options_);
  pid_ = std::exchange(other.pid_, -1);
  stdout_fd_ = std::exchange(other.stdout_fd_, -1);
  port_ = other.port_;
  connection_ = std::move(other.connection_);
  trust_bundle_pem_ = std::move(other.trust_bundle_pem_);
  return *this;
}

ServerProcess::~ServerProcess() { Cleanup(); }

void ServerProcess::Cleanup() {
  if (running()) {
    auto stopped = Stop();
    if (!stopped) std::cerr << "ServerProcess: " << stopped.error().message() << "\n";
  }
  if (root_.empty()) return;
  if (::testing::Test::HasFailure()) {
    std::cerr << "---- devid serve log (" << root_ << "/serve.log) ----\n"
              << log() << "---- end of log ----\n";
  }
  if (std::getenv("DEVID_KEEP_TEST_DIRS") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  root_.clear();
}

std::string ServerProcess::log() const {
  auto text = ReadFile(root_ + "/serve.log");
  return text ? *text : "";
}

Status ServerProcess::Launch() {
  std::vector<std::string> argv = {DEVID_BINARY, "serve", "--data-dir", data_dir()};
  if (!options_.config_toml.empty()) {
    argv.push_back("--config");
    argv.push_back(root_ + "/devid.toml");
  }
  bool names_listen = false;
  for (const auto& arg : options_.args) {
    names_listen = names_listen || arg == "--listen" || arg.starts_with("--listen=");
  }
  if (!names_listen) {
    argv.push_back("--listen");
    argv.push_back("127.0.0.1:" + std::to_string(port_));
  }
  argv.insert(argv.end(), options_.args.begin(), options_.args.end());

  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return std::unexpected(Unavailable(Errno("pipe2")));
  std::string log_path = root_ + "/serve.log";
  FileActions actions;
  posix_spawn_file_actions_addopen(actions.get(), 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(actions.get(), out[1], 1);
  posix_spawn_file_actions_addopen(actions.get(), 2, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  auto pid = Spawn(argv, options_.env, actions);
  ::close(out[1]);
  if (!pid) {
    ::close(out[0]);
    return std::unexpected(pid.error());
  }
  pid_ = *pid;
  stdout_fd_ = out[0];

  auto fail = [&](std::string why) -> Status {
    if (running()) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    ::close(stdout_fd_);
    stdout_fd_ = -1;
    return std::unexpected(Unavailable("starting devid serve: " + why + "; its log:\n" + log()));
  };

  // The server prints the listening line after it has bound the port and written
  // connection.json (server/serve.cc), so both are ready once it appears.
  auto deadline = Clock::now() + kStartTimeout;
  std::string printed;
  size_t line_start = std::string::npos;
  while ((line_start = printed.find(kListeningLine)) == std::string::npos ||
         printed.find('\n', line_start) == std::string::npos) {
    if (Clock::now() >= deadline) return fail("no listening line within 30 s");
    pollfd fd = {stdout_fd_, POLLIN, 0};
    int ready = ::poll(&fd, 1, PollMillis(deadline));
    if (ready < 0 && errno != EINTR) return fail(Errno("poll"));
    if (ready <= 0) continue;
    char buffer[1024];
    ssize_t n = ::read(stdout_fd_, buffer, sizeof buffer);
    if (n == 0) {
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
      return fail("it exited with code " + std::to_string(ExitCode(status)) + " before listening");
    }
    if (n > 0) printed.append(buffer, static_cast<size_t>(n));
  }
  std::string line = printed.substr(line_start, printed.find('\n', line_start) - line_start);
  std::string_view port_text = std::string_view(line).substr(line.rfind(':') + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || port == 0 || port > 65535) return fail("unparsable line: " + line);
  port_ = static_cast<uint16_t>(port);

  auto text = ReadFile(connection_file());
  if (!text) return fail(text.error().message());
  connection_ = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!connection_.is_object()) return fail(connection_file() + " is not a JSON object");
  auto pem = ReadFile(trust_bundle_file());
  if (!pem) return fail(pem.error().message());
  trust_bundle_pem_ = std::move(*pem);
  return Ok();
}

Result<int> ServerProcess::Stop() {
  if (!running()) return std::unexpected(FailedPrecondition("devid serve is not running"));
  ::kill(pid_, SIGTERM);
  std::optional<int> code = WaitWithTimeout(pid_, Clock::now() + kStopTimeout);
  bool killed = !code;
  if (killed) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  pid_ = -1;
  ::close(stdout_fd_);
  stdout_fd_ = -1;
  if (killed) {
    return std::unexpected(Unavailable("devid serve did not stop within 30 s of SIGTERM"));
  }
  return *code;
}

Status ServerProcess::Restart() {
  if (running()) DEVID_TRY(Stop());
  return Launch();
}

}  // namespace devid::testing
