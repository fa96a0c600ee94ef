#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/result.h"

namespace devid::testing {

// CommandResult is how a finished child process ended and what it wrote.
struct CommandResult {
  int exit_code = -1;  // the exit status; 128 + N when killed by signal N; -1 when not started
  std::string out;     // stdout
  std::string err;     // stderr
};

// RunCommand runs argv (argv[0] a path) with stdin from /dev/null and the test's environment plus
// env ("NAME=value"), waits for it and returns its exit code and output. A child still running
// after 60 s is killed (exit_code 137).
CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::vector<std::string>& env = {});

// Describe renders a command's outcome for a failure message: exit code, stdout and stderr.
inline std::string Describe(const CommandResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "stderr:\n" + r.err;
}

// ServerProcessOptions configures a `devid serve` child process.
struct ServerProcessOptions {
  // args are added after `serve --data-dir D`; `--listen 127.0.0.1:0` is added unless args name
  // --listen themselves.
  std::vector<std::string> args;
  // config_toml, when non-empty, is written to <root>/devid.toml and passed as --config.
  std::string config_toml;
  // env entries ("NAME=value", e.g. "SPDLOG_LEVEL=debug") are added to the server's environment.
  std::vector<std::string> env;
  // prepare, when set, runs once before the first start with the data dir's path (not yet
  // created), e.g. to run `devid ca init` there first; its error fails Start.
  std::function<Status(const std::string& data_dir)> prepare;
};

// ServerProcess runs DEVID_BINARY serve in a fresh temporary directory (data dir <root>/data, the
// server's stderr in <root>/serve.log) for integration tests. Start returns once the server has
// printed its "listening" line, so it accepts connections. Move-only; the destructor stops the
// server (SIGTERM, then SIGKILL after 30 s), prints the server's log when the current test has
// failed, and removes the directory unless DEVID_KEEP_TEST_DIRS is set.
class ServerProcess {
 public:
  // Start launches the server. It fails with kUnavailable (naming the cause and quoting the
  // server's log) when the server cannot be spawned, exits, or has not reported listening within
  // 30 s.
  static Result<ServerProcess> Start(std::vector<std::string> extra_args = {});
  static Result<ServerProcess> Start(ServerProcessOptions options);

  ServerProcess(ServerProcess&& other) noexcept;
  ServerProcess& operator=(ServerProcess&& other) noexcept;
  ~ServerProcess();

  // Stop sends SIGTERM and waits for the server to exit; it returns the exit code (128 + N when
  // killed by signal N). It fails with kFailedPrecondition when the server is not running and
  // kUnavailable when it had to be killed after 30 s.
  Result<int> Stop();

  // Restart stops the server when running and starts it again on the same data dir and, unless
  // the options name --listen, the same port, so clients can keep their endpoint. Fails as Start.
  Status Restart();

  // running tells whether the child has been started and not yet reaped.
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // root is the temporary directory; data_dir the server's --data-dir inside it.
  const std::string& root() const { return root_; }
  std::string data_dir() const { return root_ + "/data"; }
  uint16_t port() const { return port_; }

  // connection is <data_dir>/connection.json as read after the last start: idScope,
  // serviceEndpoint, deviceEndpoint, serviceConnectionString, trustBundle.
  const nlohmann::json& connection() const { return connection_; }
  std::string connection_file() const { return data_dir() + "/connection.json"; }
  std::string id_scope() const { return connection_.value("idScope", ""); }
  std::string service_endpoint() const { return connection_.value("serviceEndpoint", ""); }
  std::string device_endpoint() const { return connection_.value("deviceEndpoint", ""); }
  std::string service_connection_string() const {
    return connection_.value("serviceConnectionString", "");
  }
  // trust_bundle_file / trust_bundle_pem are the CA certificates clients should trust.
  std::string trust_bundle_file() const { return connection_.value("trustBundle", ""); }
  const std::string& trust_bundle_pem() const { return trust_bundle_pem_; }

  // log returns everything the server has written to stderr so far, across restarts.
  std::string log() const;

 private:
  ServerProcess() = default;
  // Launch spawns the server and waits for it to listen, filling port_ and connection_.
  Status Launch();
  void Cleanup();

  std::string root_;
  ServerProcessOptions options_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;  // the read end of the child's stdout, kept open so it never gets SIGPIPE
  uint16_t port_ = 0;
  nlohmann::json connection_;
  std::string trust_bundle_pem_;
};

}  // namespace devid::testing
