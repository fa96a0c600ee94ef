#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "api/certificate_api.h"
#include "api/device_api.h"
#include "api/est_api.h"
#include "api/router.h"
#include "api/service_api.h"
#include "api/service_auth.h"
#include "attestation/symmetric_key/symmetric_key_verifier.h"
#include "base/clock.h"
#include "base/random.h"
#include "base/url.h"
#include "ca/testing/mini_ca.h"
#include "ossl/base64.h"
#include "pki/sas_token.h"
#include "registry/sqlite/sqlite_registry.h"

namespace devid::api::testing {

// ApiFixture wires the real request path (Router → DeviceApi/ServiceApi/EstApi/CertificateApi →
// verifier → SQLite) without sockets, on a temporary database, a fake clock and an in-memory test
// CA.
class ApiFixture : public ::testing::Test {
 protected:
  static constexpr const char* kScope = "0ne00000001";
  static constexpr const char* kHost = "localhost";
  static constexpr const char* kOwnerKey = "c2VydmljZS1vd25lci1rZXktZm9yLXRlc3RzLTMyYnl0ZXM=";
  static constexpr const char* kPrimary = "lBgFsLBEAlaF/fhCOClS3EndVhAvt0mskJid4n2avLY=";
  static constexpr const char* kSecondary = "iGtdb5zpyHv5J3ldqCw8w7Wo6JqKL7K8bdmLEqHRGQ4=";
  static constexpr const char* kGroupKey =
      "7aBt6S1Mv5zZ7+WQpwP8mohWPBwDmDSKmz1FiPtLpztqaXMukfgPMxOzQoWxXxvpSrGXBf4eQDnZ+FRKSVJg4A==";

  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("devid-api-" + std::to_string(::getpid()) + "-" + random_.Hex(4));
    std::filesystem::create_directories(dir_);
    auto registry = registry::SqliteRegistry::Open((dir_ / "devid.db").string(), clock_, random_);
    ASSERT_TRUE(registry) << registry.error().message();
    registry_ = std::move(*registry);
    verifier_ = std::make_unique<attestation::SymmetricKeyVerifier>(*registry_, clock_);
    auto authority = ca::testing::MakeTestCa(clock_, random_);
    ASSERT_TRUE(authority) << authority.error().message();
    authority_ = std::move(*authority);
    DeviceApiOptions device_options{kScope, {"hub-a", "hub-b"}, 1};
    device_options.authority = authority_.get();
    device_ = std::make_unique<DeviceApi>(device_options, *registry_, *verifier_, clock_, random_);
    auth_ = std::make_unique<ServiceAuthenticator>(
        kHost,
        std::vector<AccessPolicy>{{"provisioningserviceowner", kOwnerKey, "", AllServiceRights()},
                                  {"reader", kOwnerKey, "", {ServiceRight::kEnrollmentRead}}},
        clock_);
    service_ = std::make_unique<ServiceApi>(*registry_, *auth_, random_);
    est_ = std::make_unique<EstApi>(*authority_, *verifier_, *registry_, clock_, kScope);
    certificates_ = std::make_unique<CertificateApi>(*registry_, *auth_, clock_);
    router_ = std::make_unique<Router>(*device_, *service_, random_,
                                       std::vector<Route*>{est_.get(), certificates_.get()});
  }

  void TearDown() override {
    router_.reset();
    certificates_.reset();
    est_.reset();
    authority_.reset();
    service_.reset();
    device_.reset();
    verifier_.reset();
    registry_.reset();
    std::filesystem::remove_all(dir_);
  }

  int64_t Now() const { return clock_.UnixSeconds(); }

  static std::vector<uint8_t> Key(std::string_view b64) { return *ossl::Base64Decode(b64); }

  // DeviceToken signs sr = {scope}/registrations/{id} raw, as the Node symmetric-key client does.
  std::string DeviceToken(std::string_view key, std::string_view reg_id, int64_t ttl = 3600,
                          std::string_view scope = kScope, std::string_view skn = "registration") {
    std::string sr = std::string(scope) + "/registrations/" + std::string(reg_id);
    return pki::CreateSasToken(Key(key), sr, Now() + ttl, skn);
  }

  std::string ServiceToken(std::string_view policy = "provisioningserviceowner",
                           std::string_view key = kOwnerKey, int64_t ttl = 3600) {
    return pki::CreateSasToken(Key(key), kHost, Now() + ttl, policy);
  }

  Response Send(std::string method, std::string target, std::string body,
                std::vector<Header> headers = {}) {
    Request request;
    request.method = std::move(method);
    request.target = std::move(target);
    request.body = std::move(body);
    request.headers = std::move(headers);
    return router_->Handle(request);
  }

  Response Register(std::string_view reg_id, const std::string& authorization,
                    std::string body = "", std::string api_version = "2019-03-31") {
    if (body.empty()) body = nlohmann::json{{"registrationId", reg_id}}.dump();
    std::vector<Header> headers;
    if (!authorization.empty()) headers.emplace_back("authorization", authorization);
    return Send("PUT",
                std::string("/") + kScope + "/registrations/" + std::string(reg_id) +
                    "/register?api-version=" + api_version,
                body, headers);
  }

  Response Service(std::string method, std::string path, const nlohmann::json& body = nullptr,
                   std::vector<Header> headers = {}) {
    headers.emplace_back("authorization", ServiceToken());
    return Send(std::move(method), path + "?api-version=2021-10-01",
                body.is_null() ? "" : body.dump(), headers);
  }

  // PutSymmetricEnrollment creates an individual symmetric-key enrollment directly in the store.
  void PutSymmetricEnrollment(const std::string& reg_id, bool enabled = true) {
    registry::Enrollment e;
    e.registration_id = reg_id;
    e.settings.attestation.type = registry::AttestationType::kSymmetricKey;
    e.settings.attestation.symmetric_key = {kPrimary, kSecondary};
    e.settings.enabled = enabled;
    ASSERT_TRUE(registry_->PutEnrollment(e, std::nullopt, {"test"}));
  }

  void PutSymmetricGroup(const std::string& group_id, bool enabled = true,
                         const std::string& prefix = "", const std::string& key = kGroupKey) {
    registry::EnrollmentGroup g;
    g.enrollment_group_id = group_id;
    g.registration_id_prefix = prefix;
    g.settings.attestation.type = registry::AttestationType::kSymmetricKey;
    g.settings.attestation.symmetric_key = {key, ""};
    g.settings.enabled = enabled;
    ASSERT_TRUE(registry_->PutEnrollmentGroup(g, std::nullopt, {"test"}));
  }

  size_t AuditCount() {
    auto records = registry_->ListAudit(0, 100000);
    return records ? records->size() : 0;
  }

  static nlohmann::json Json(const Response& r) { return nlohmann::json::parse(r.body); }

  static std::string ErrorCodeHeader(const Response& r) {
    for (const auto& [k, v] : r.headers) {
      if (k == "x-ms-error-code") return v;
    }
    return "";
  }

  FakeClock clock_{std::chrono::system_clock::from_time_t(1795700000)};
  SecureRandom random_;
  std::filesystem::path dir_;
  std::unique_ptr<registry::SqliteRegistry> registry_;
  std::unique_ptr<attestation::SymmetricKeyVerifier> verifier_;
  std::unique_ptr<DeviceApi> device_;
  std::unique_ptr<ServiceAuthenticator> auth_;
  std::unique_ptr<ServiceApi> service_;
  std::unique_ptr<ca::Authority> authority_;
  std::unique_ptr<EstApi> est_;
  std::unique_ptr<CertificateApi> certificates_;
  std::unique_ptr<Router> router_;
};

}  // namespace devid::api::testing
