#pragma once

// EST (RFC 7030) as a device drives it from the command line: curl against a `devid serve`
// process's /.well-known/est/, with requests and keys made by openssl.

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "base/clock.h"
#include "keys/testing/softhsm_token.h"  // RunShell
#include "ossl/base64.h"
#include "pki/sas_token.h"
#include "server_process.h"

namespace devid::testing {

// Shell runs command and returns its output; a failure fails the test.
inline std::string Shell(const std::string& command) {
  std::string output;
  EXPECT_EQ(keys::testing::RunShell(command, &output), 0) << command << "\n" << output;
  return output;
}

// EstCurl runs curl on server's /.well-known/est/<operation> with extra args (trusting only the
// server's bundle); returns the HTTP status and leaves the body in body_file.
inline std::string EstCurl(const ServerProcess& server, const std::string& operation,
                           const std::string& args, const std::string& body_file) {
  std::string status;
  keys::testing::RunShell("curl -s --cacert " + server.trust_bundle_file() + " -o " + body_file +
                              " -w '%{http_code}' " + args + " " + server.device_endpoint() +
                              "/.well-known/est/" + operation,
                          &status);
  return status;
}

// Pkcs7ToPem decodes a base64 certs-only PKCS #7 body into <body_file>.pem and returns its path.
inline std::string Pkcs7ToPem(const std::string& body_file) {
  std::string pem = body_file + ".pem";
  std::string output;
  EXPECT_EQ(keys::testing::RunShell("openssl base64 -d -in " + body_file +
                                        " | openssl pkcs7 -inform DER -print_certs -out " + pem,
                                    &output),
            0)
      << output;
  return pem;
}

// MakeCsrBase64 writes a fresh key <dir>/<name>.key (key_spec is `openssl req -newkey`'s
// argument) and a base64 DER request for CN=cn to <dir>/<name>.b64; returns the request's path.
inline std::string MakeCsrBase64(const std::string& dir, const std::string& name,
                                 const std::string& cn,
                                 const std::string& key_spec = "ec -pkeyopt "
                                                               "ec_paramgen_curve:P-256") {
  std::string path = dir + "/" + name + ".b64";
  std::string output;
  EXPECT_EQ(keys::testing::RunShell("openssl req -new -newkey " + key_spec + " -nodes -keyout " +
                                        dir + "/" + name + ".key -subj /CN=" + cn +
                                        " -outform DER 2>/dev/null | openssl base64 > " + path,
                                    &output),
            0)
      << output;
  return path;
}

// DeviceSasToken is the DPS SAS token of registration_id signed with key_base64, valid 10 min.
inline std::string DeviceSasToken(const ServerProcess& server, const std::string& registration_id,
                                  const std::string& key_base64) {
  auto key = ossl::Base64Decode(key_base64);
  return pki::CreateSasToken(*key, server.id_scope() + "/registrations/" + registration_id,
                             SystemClock().UnixSeconds() + 600, "registration");
}

// AddSasEnrollment enrolls registration_id with the symmetric primary key key_base64 through
// `devid enrollment add`, as an operator would.
inline CommandResult AddSasEnrollment(const ServerProcess& server,
                                      const std::string& registration_id,
                                      const std::string& key_base64) {
  return RunCommand({DEVID_BINARY, "enrollment", "add", "--registration-id", registration_id,
                     "--primary-key", key_base64, "--connection", server.connection_file()});
}

// StartServerWithSasEnrollments starts `devid serve` with options and enrolls each of
// registration_ids with key_base64, for a suite's SetUpTestSuite; on failure it fails the test
// and returns nullptr.
inline ServerProcess* StartServerWithSasEnrollments(
    ServerProcessOptions options, const std::vector<std::string>& registration_ids,
    const std::string& key_base64) {
  auto started = ServerProcess::Start(std::move(options));
  if (!started) {
    ADD_FAILURE() << started.error().message();
    return nullptr;
  }
  for (const std::string& id : registration_ids) {
    CommandResult added = AddSasEnrollment(*started, id, key_base64);
    if (added.exit_code != 0) {
      ADD_FAILURE() << Describe(added);
      return nullptr;
    }
  }
  return new ServerProcess(std::move(*started));
}

// TestDir makes and returns <server root>/<prefix><current test's name>, so that each test's
// files stay apart and are removed with the server's directory.
inline std::string TestDir(const ServerProcess& server, const std::string& prefix) {
  std::string dir = server.root() + "/" + prefix +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::filesystem::create_directories(dir);
  return dir;
}

// EstEnroll gets a device-client certificate for registration_id by simpleenroll with its SAS
// token; returns the certificate's PEM path (key at <dir>/<registration_id>.key).
inline std::string EstEnroll(const ServerProcess& server, const std::string& dir,
                             const std::string& registration_id, const std::string& key_base64) {
  std::string csr = MakeCsrBase64(dir, registration_id, registration_id);
  std::string body = dir + "/" + registration_id + ".p7";
  EXPECT_EQ(EstCurl(server, "simpleenroll",
                    "-X POST -H 'Content-Type: application/pkcs10' -H 'Authorization: " +
                        DeviceSasToken(server, registration_id, key_base64) +
                        "' --data-binary @" + csr,
                    body),
            "200");
  return Pkcs7ToPem(body);
}

}  // namespace devid::testing
