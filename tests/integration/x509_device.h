#pragma once

// A device with an X.509 identity, played by `devid device` (the device SDK): it makes its key in
// a key store, asks for a certificate with `devid device csr`, the operator certifies it with
// `devid ca issue` on the server's data dir and enrolls it, and the device registers with
// `devid device register --x509`.

#include <fstream>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dps_client.h"
#include "server_process.h"

namespace devid::testing {

// Devid runs the devid binary with args and env ("NAME=value") added to the test's environment.
inline CommandResult Devid(std::vector<std::string> args,
                           const std::vector<std::string>& env = {}) {
  args.insert(args.begin(), DEVID_BINARY);
  return RunCommand(args, env);
}

// FirstPem returns the first PEM block of chain_pem (the leaf).
inline std::string FirstPem(const std::string& chain_pem) {
  const std::string end = "-----END CERTIFICATE-----\n";
  size_t at = chain_pem.find(end);
  return at == std::string::npos ? chain_pem : chain_pem.substr(0, at + end.size());
}

// CertifyDeviceKey writes `devid device csr` for key_uri with CN=reg_id to csr_file, has the
// server's CA issue it with `devid ca issue` into cert_file (leaf, then issuing CA) and returns
// whether all went well; failures are reported to gtest.
inline bool CertifyDeviceKey(const ServerProcess& server, const std::string& key_uri,
                             const std::string& reg_id, const std::string& csr_file,
                             const std::string& cert_file, const std::vector<std::string>& env = {},
                             const std::vector<std::string>& key_args = {}) {
  std::vector<std::string> csr_args = {"device", "csr",   "--key", key_uri, "--registration-id",
                                       reg_id,   "--out", csr_file};
  csr_args.insert(csr_args.end(), key_args.begin(), key_args.end());
  CommandResult csr = Devid(csr_args, env);
  EXPECT_EQ(csr.exit_code, 0) << Describe(csr);
  if (csr.exit_code != 0) return false;
  CommandResult issued = Devid(
      {"ca", "issue", "--data-dir", server.data_dir(), "--csr", csr_file, "--out", cert_file});
  EXPECT_EQ(issued.exit_code, 0) << Describe(issued);
  return issued.exit_code == 0;
}

// EnrollCertificate makes an individual X.509 enrollment for reg_id whose primary client
// certificate is the leaf of cert_pem (protocol notes §3, matching by thumbprint), as an operator
// does: `devid enrollment add --x509-cert`.
inline bool EnrollCertificate(const ServerProcess& server, const std::string& reg_id,
                              const std::string& cert_pem) {
  std::string file = server.root() + "/enroll-" + reg_id + ".pem";
  std::ofstream(file) << FirstPem(cert_pem);
  CommandResult added = Devid({"enrollment", "add", "--registration-id", reg_id, "--x509-cert",
                               file, "--connection", server.connection_file(), "-o", "json"});
  EXPECT_EQ(added.exit_code, 0) << Describe(added);
  if (added.exit_code != 0) return false;
  nlohmann::json body = nlohmann::json::parse(added.out, nullptr, false);
  EXPECT_EQ(body["attestation"]["type"], "x509") << added.out;
  EXPECT_TRUE(body["attestation"]["x509"]["clientCertificates"].contains("primary")) << added.out;
  return body["attestation"]["type"] == "x509";
}

// RegisterX509 runs `devid device register --x509` against server, trusting trust_bundle_file
// (default: the server's), with extra arguments and env.
inline CommandResult RegisterX509(const ServerProcess& server, const std::string& cert_file,
                                  const std::string& key_uri, std::vector<std::string> extra = {},
                                  const std::vector<std::string>& env = {},
                                  const std::string& trust_bundle_file = "") {
  std::vector<std::string> args = {"device", "register", "--x509", "--cert", cert_file, "--key",
                                   key_uri, "--id-scope", server.id_scope(), "-o", "json"};
  args.insert(args.end(), {"--endpoint", server.device_endpoint(), "--trust-bundle",
                           trust_bundle_file.empty() ? server.trust_bundle_file()
                                                     : trust_bundle_file});
  args.insert(args.end(), extra.begin(), extra.end());
  return Devid(args, env);
}

// Registered tells whether the server holds a registration for reg_id (service API).
inline bool Registered(const ServerProcess& server, const std::string& reg_id) {
  DpsClient client(server);
  EXPECT_TRUE(client.connected());
  auto got = client.Service("GET", "/registrations/" + reg_id);
  return got && got->status == 200;
}

}  // namespace devid::testing
