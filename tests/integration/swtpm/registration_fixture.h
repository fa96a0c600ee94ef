#pragma once

// SwtpmRegistrationTest: a real `devid serve` and an HTTPS client to it, with the service and
// device calls and the TPM-signed SAS token the swtpm tests share. ServerOptions picks the
// server's configuration.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/clock.h"
#include "base/random.h"
#include "base/url.h"
#include "sdk/https_client.h"
#include "ossl/base64.h"
#include "pki/sas_token.h"
#include "server_process.h"
#include "swtpm.h"
#include "tpm/public_area.h"

namespace devid::testing {

using nlohmann::json;

inline std::string ConnectionValue(const std::string& connection_string,
                                   const std::string& name) {
  std::string key = name + "=";
  size_t at = connection_string.find(key);
  if (at == std::string::npos) return "";
  size_t end = connection_string.find(';', at);
  return connection_string.substr(at + key.size(),
                                  end == std::string::npos ? end : end - at - key.size());
}

class SwtpmRegistrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SecureRandom random;
    root_ = std::filesystem::path(::testing::TempDir()) / ("devid-swtpm-" + random.Hex(6));
    std::filesystem::create_directories(root_);
    auto server = ServerProcess::Start(ServerOptions());
    ASSERT_TRUE(server) << server.error().message();
    server_.emplace(std::move(*server));
    sdk::ClientTlsOptions tls;
    tls.trust_bundle_pem = server_->trust_bundle_pem();
    tls.server_name = "localhost";
    auto client = sdk::HttpsClient::Connect("127.0.0.1", server_->port(), tls);
    ASSERT_TRUE(client) << client.error().message();
    client_.emplace(std::move(*client));
  }

  // ServerOptions is the configuration of the test's `devid serve`; root_ exists when it runs.
  virtual ServerProcessOptions ServerOptions() { return {}; }

  void TearDown() override {
    tpms_.clear();
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }

  // NewTpm starts a TPM kept until the test ends; with ek_ca_dir, one manufactured by that CA.
  Swtpm* NewTpm(const std::string& name, const std::filesystem::path& ek_ca_dir = {}) {
    auto tpm = Swtpm::Start(root_ / name, ek_ca_dir);
    tpms_.push_back(std::move(tpm));
    return tpms_.back().get();
  }

  sdk::HttpResponse Service(const std::string& method, const std::string& path, const json& body) {
    std::string cs = server_->service_connection_string();
    auto key = ossl::Base64Decode(ConnectionValue(cs, "SharedAccessKey"));
    std::string token = pki::CreateSasToken(*key, ConnectionValue(cs, "HostName"),
                                            SystemClock().UnixSeconds() + 600,
                                            ConnectionValue(cs, "SharedAccessKeyName"));
    auto r = client_->Send(
        method, path + "?api-version=2021-10-01",
        {{"authorization", token}, {"content-type", "application/json; charset=utf-8"}},
        body.dump());
    EXPECT_TRUE(r) << r.error().message();
    return r.value_or(sdk::HttpResponse{});
  }

  sdk::HttpResponse Device(const std::string& method, const std::string& target,
                       const std::string& authorization, const std::string& body) {
    std::vector<sdk::HttpHeader> headers = {{"content-type", "application/json; charset=utf-8"}};
    if (!authorization.empty()) headers.emplace_back("authorization", authorization);
    auto r = client_->Send(method, "/" + server_->id_scope() + target, headers, body);
    EXPECT_TRUE(r) << r.error().message();
    return r.value_or(sdk::HttpResponse{});
  }

  sdk::HttpResponse Register(const std::string& reg_id, const std::string& authorization,
                         const std::string& body) {
    return Device("PUT", "/registrations/" + reg_id + "/register?api-version=2019-03-31",
                  authorization, body);
  }

  // TpmToken signs the DPS SAS token inside the TPM as the Node TPM client does (§4.2 step 3).
  std::string TpmToken(Swtpm& tpm, const std::string& reg_id) {
    std::string sr = PercentEncodeComponent(server_->id_scope() + "/registrations/" + reg_id);
    int64_t se = SystemClock().UnixSeconds() + 600;
    std::vector<uint8_t> sig = tpm.Hmac(sr + "\n" + std::to_string(se));
    return "SharedAccessSignature sr=" + sr +
           "&sig=" + PercentEncodeComponent(ossl::Base64Encode(sig)) + "&se=" + std::to_string(se) +
           "&skn=registration";
  }

  static std::string Body(const std::string& reg_id, const std::string& ek,
                          const std::string& srk) {
    return json{
        {"registrationId", reg_id},
        {"tpm",
         {{"endorsementKey", ossl::Base64Encode(ek)}, {"storageRootKey", ossl::Base64Encode(srk)}}}}
        .dump();
  }

  // Enroll enrolls the EK by the service API under Azure's default registration ID (§4.1).
  std::string Enroll(const std::string& ek) {
    std::string reg_id = tpm::RegistrationIdFromEk(
        std::span(reinterpret_cast<const uint8_t*>(ek.data()), ek.size()));
    sdk::HttpResponse r =
        Service("PUT", "/enrollments/" + reg_id,
                {{"registrationId", reg_id},
                 {"attestation",
                  {{"type", "tpm"}, {"tpm", {{"endorsementKey", ossl::Base64Encode(ek)}}}}}});
    EXPECT_EQ(r.status, 200) << r.body;
    return reg_id;
  }

  // EnrollByCli enrolls the TPM whose EK and SRK files are in its directory with `devid
  // enrollment add --tpm-ek --tpm-srk` and no registration ID, and returns the ID the CLI chose.
  std::string EnrollByCli(const Swtpm& tpm) {
    CommandResult r = RunCommand(
        {DEVID_BINARY, "enrollment", "add", "--tpm-ek", tpm.File("ek.pub").string(), "--tpm-srk",
         tpm.File("srk.pub").string(), "-o", "json", "--connection", server_->connection_file()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json out = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(out.is_object()) << r.out;
    if (!out.is_object()) return "";
    EXPECT_EQ(out["attestation"]["type"], "tpm");
    return out.value("registrationId", "");
  }

  // ExpectNotRegistered checks through the service API that reg_id has no registration.
  void ExpectNotRegistered(const std::string& reg_id) {
    sdk::HttpResponse r = Service("GET", "/registrations/" + reg_id, nullptr);
    EXPECT_EQ(r.status, 404) << r.body;
  }

  std::filesystem::path root_;
  std::optional<ServerProcess> server_;
  std::optional<sdk::HttpsClient> client_;
  std::vector<std::unique_ptr<Swtpm>> tpms_;
};

}  // namespace devid::testing
