#include "attestation/x509/crl_cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "base/file.h"
#include "ca/authority.h"
#include "ca/crl.h"
#include "ca/profile.h"
#include "keys/software/file_key_store.h"
#include "net/http_get.h"
#include "ossl/revocation_handles.h"

namespace devid::attestation {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// PythonHttpServer serves a directory over plain HTTP with python3's http.server on 127.0.0.1
// and an ephemeral port: a real server, as a CA's distribution point would be.
class PythonHttpServer {
 public:
  explicit PythonHttpServer(const std::string& directory) {
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      execlp("python3", "python3", "-u", "-c",
             "import functools, http.server, sys\n"
             "handler = functools.partial(http.server.SimpleHTTPRequestHandler,"
             " directory=sys.argv[1])\n"
             "handler.log_message = lambda *args: None\n"
             "server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)\n"
             "print(server.server_address[1])\n"
             "server.serve_forever()\n",
             directory.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    std::string line;
    char c = 0;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    port_ = line.empty() ? 0 : std::stoi(line);
  }
  ~PythonHttpServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

struct TestCa {
  pki::Certificate certificate;
  std::unique_ptr<keys::Key> key;
};

class CrlCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("devid-crl-cache-" + std::to_string(::getpid()) + "-" + random_.Hex(4));
    std::filesystem::create_directories(dir_ / "crl");
    server_ = std::make_unique<PythonHttpServer>(dir_.string());
    ASSERT_NE(server_->port(), 0) << "python3 http.server did not start";
    base_url_ = "http://127.0.0.1:" + std::to_string(server_->port());
    root_ = std::make_unique<TestCa>(MakeCa(ca::kRootCaProfile, "Vendor Root", nullptr));
    intermediate_ = std::make_unique<TestCa>(
        MakeCa(ca::kIntermediateCaProfile, "Vendor Intermediate", root_.get()));
    leaf_ = std::make_unique<pki::Certificate>(Issue(*intermediate_, "device-1"));
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  TestCa MakeCa(std::string_view profile_name, const std::string& name, const TestCa* issuer) {
    auto pkey = keys::GenerateSoftwareKey(keys::KeyAlgorithm::kEcdsaP256);
    EXPECT_TRUE(pkey);
    auto key = keys::SoftwareKey(std::move(*pkey), "test:" + name);
    EXPECT_TRUE(key);
    auto profile = ca::FindProfile(profile_name);
    EXPECT_TRUE(profile);
    auto certificate = ca::IssueCertificate(
        **profile, {.common_name = name, .public_key = (*key)->public_key()},
        issuer ? &issuer->certificate : nullptr, issuer ? *issuer->key : **key,
        {.base_url = base_url_}, clock_, random_);
    EXPECT_TRUE(certificate) << certificate.error().message();
    return TestCa{std::move(*certificate), std::move(*key)};
  }

  pki::Certificate Issue(const TestCa& issuer, const std::string& name) {
    auto pkey = keys::GenerateSoftwareKey(keys::KeyAlgorithm::kEcdsaP256);
    auto profile = ca::FindProfile(ca::kDeviceClientProfile);
    auto certificate = ca::IssueCertificate(**profile, {.common_name = name,
                                                        .public_key = pkey->get()},
                                            &issuer.certificate, *issuer.key,
                                            {.base_url = base_url_}, clock_, random_);
    EXPECT_TRUE(certificate) << certificate.error().message();
    return std::move(*certificate);
  }

  // CrlPath is where issuer's CRL is published: the path its certificates' distribution point
  // names under base_url_.
  std::filesystem::path CrlPath(const pki::Certificate& issued_by_it) {
    std::string url = std::string(DistributionPoint(issued_by_it));
    return dir_ / url.substr(base_url_.size() + 1);
  }
  static std::string DistributionPoint(const pki::Certificate& certificate) {
    auto* points = static_cast<STACK_OF(DIST_POINT)*>(
        X509_get_ext_d2i(certificate.get(), NID_crl_distribution_points, nullptr, nullptr));
    if (points == nullptr) return "";
    const GENERAL_NAME* name =
        sk_GENERAL_NAME_value(sk_DIST_POINT_value(points, 0)->distpoint->name.fullname, 0);
    std::string url(reinterpret_cast<const char*>(
                        ASN1_STRING_get0_data(name->d.uniformResourceIdentifier)),
                    ASN1_STRING_length(name->d.uniformResourceIdentifier));
    sk_DIST_POINT_pop_free(points, DIST_POINT_free);
    return url;
  }

  // Crl signs a CRL by issuer listing revoked, valid from now for lifetime.
  std::string Crl(const TestCa& issuer, const std::vector<const pki::Certificate*>& revoked,
                  std::chrono::seconds lifetime = 24h) {
    ca::CrlContent content{.this_update = clock_.Now(), .next_update = clock_.Now() + lifetime,
                           .number = ++crl_number_};
    for (const pki::Certificate* certificate : revoked) {
      content.entries.push_back({certificate->SerialHex(), clock_.Now(), 1});
    }
    auto der = ca::BuildCrl(issuer.certificate, *issuer.key, content);
    EXPECT_TRUE(der) << der.error().message();
    return *der;
  }

  void Publish(const pki::Certificate& issued, const std::string& crl) {
    ASSERT_TRUE(WriteFileAtomically(CrlPath(issued).string(), crl, 0644));
  }
  // PublishBoth publishes the root's and intermediate's CRLs, listing revoked.
  void PublishBoth(const std::vector<const pki::Certificate*>& revoked = {}) {
    Publish(intermediate_->certificate, Crl(*root_, revoked));
    Publish(*leaf_, Crl(*intermediate_, revoked));
  }

  std::unique_ptr<CrlCache> StartCache(CrlCacheOptions options = {}) {
    options.poll_interval = 1h;  // the tests drive refreshes with RefreshDue
    auto cache = CrlCache::Start(
        std::move(options),
        [](const std::string& url) { return net::HttpGet(url, {.timeout = 5s}); }, clock_);
    EXPECT_TRUE(cache) << cache.error().message();
    return cache ? std::move(*cache) : nullptr;
  }

  Status Check(CrlCache& cache) {
    std::vector<pki::Certificate> path;
    path.push_back(leaf_->Clone());
    path.push_back(intermediate_->certificate.Clone());
    path.push_back(root_->certificate.Clone());
    return cache.CheckPath(path);
  }

  FakeClock clock_{std::chrono::system_clock::from_time_t(1795700000)};
  SecureRandom random_;
  std::filesystem::path dir_;
  std::unique_ptr<PythonHttpServer> server_;
  std::string base_url_;
  std::unique_ptr<TestCa> root_;
  std::unique_ptr<TestCa> intermediate_;
  std::unique_ptr<pki::Certificate> leaf_;
  uint64_t crl_number_ = 0;
};

TEST_F(CrlCacheTest, Accepts_UnrevokedPath_WithCrlsFetchedFromDistributionPoints) {
  PublishBoth();
  auto cache = StartCache();
  ASSERT_TRUE(cache);
  auto checked = Check(*cache);
  EXPECT_TRUE(checked) << checked.error().message();
}

TEST_F(CrlCacheTest, Rejects_RevokedLeaf) {
  PublishBoth({leaf_.get()});
  auto cache = StartCache();
  auto checked = Check(*cache);
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_THAT(checked.error().message(), HasSubstr("CN=device-1"));
  EXPECT_THAT(checked.error().message(), HasSubstr("is revoked by CN=Vendor Intermediate's CRL"));
}

TEST_F(CrlCacheTest, Rejects_RevokedIntermediate) {
  PublishBoth({&intermediate_->certificate});
  auto cache = StartCache();
  auto checked = Check(*cache);
  ASSERT_FALSE(checked);
  EXPECT_THAT(checked.error().message(),
              HasSubstr("CN=Vendor Intermediate (serial " + intermediate_->certificate.SerialHex() +
                        ") is revoked by CN=Vendor Root's CRL"));
}

TEST_F(CrlCacheTest, RefreshesBeforeNextUpdate_AndSeesANewRevocation) {
  PublishBoth();
  auto cache = StartCache({.refresh_before = 1h, .max_age = 30h});
  ASSERT_TRUE(Check(*cache));
  Publish(*leaf_, Crl(*intermediate_, {leaf_.get()}));
  // Not yet due: the cached copy is used and no request fetches.
  clock_.Advance(22h);
  cache->RefreshDue();
  EXPECT_TRUE(Check(*cache));
  // Due: nextUpdate is an hour away.
  clock_.Advance(1h);
  cache->RefreshDue();
  auto checked = Check(*cache);
  ASSERT_FALSE(checked);
  EXPECT_THAT(checked.error().message(), HasSubstr("is revoked"));
}

TEST_F(CrlCacheTest, KeepsLastGoodCopy_WhenARefreshFails_UntilItGoesStale) {
  PublishBoth();
  auto cache = StartCache({.max_age = 1h});
  ASSERT_TRUE(Check(*cache));
  // The distribution point now serves garbage, then nothing at all.
  ASSERT_TRUE(WriteFileAtomically(CrlPath(*leaf_).string(), "not a CRL", 0644));
  clock_.Advance(2h);
  cache->RefreshDue();
  EXPECT_TRUE(Check(*cache));
  std::filesystem::remove(CrlPath(*leaf_));
  clock_.Advance(2h);
  cache->RefreshDue();
  EXPECT_TRUE(Check(*cache));
  // The last good copy's nextUpdate (24 h) passes: fail closed, and say why.
  clock_.Advance(21h);
  Publish(intermediate_->certificate, Crl(*root_, {}));  // the root's stays current
  cache->RefreshDue();
  auto checked = Check(*cache);
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_THAT(checked.error().message(), HasSubstr("no current CRL for certificate CN=device-1"));
  EXPECT_THAT(checked.error().message(), HasSubstr("is stale (nextUpdate"));
}

TEST_F(CrlCacheTest, Rejects_WhenNoCrlCanBeFetched_ByDefault) {
  auto cache = StartCache();
  auto checked = Check(*cache);
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_THAT(checked.error().message(), HasSubstr("no current CRL for certificate CN=device-1"));
  EXPECT_THAT(checked.error().message(), HasSubstr("HTTP status 404"));
}

TEST_F(CrlCacheTest, Accepts_WhenNoCrlCanBeFetched_UnderFailOpen) {
  auto cache = StartCache({.unavailable = CrlUnavailablePolicy::kAccept});
  EXPECT_TRUE(Check(*cache));
}

TEST_F(CrlCacheTest, Accepts_FailOpen_StillRefusesARevokedCertificate) {
  PublishBoth({leaf_.get()});
  auto cache = StartCache({.unavailable = CrlUnavailablePolicy::kAccept});
  EXPECT_FALSE(Check(*cache));
}

TEST_F(CrlCacheTest, Rejects_CrlNotSignedByTheIssuer) {
  // The root's CRL served where the intermediate's belongs: another issuer, another key.
  Publish(intermediate_->certificate, Crl(*root_, {}));
  Publish(*leaf_, Crl(*root_, {}));
  auto cache = StartCache();
  auto checked = Check(*cache);
  ASSERT_FALSE(checked);
  EXPECT_THAT(checked.error().message(), HasSubstr("is not signed by CN=Vendor Intermediate"));
}

TEST_F(CrlCacheTest, SkipsCertificatesDevidIssued) {
  // Nothing published: only the inventory could say, and it is not asked here.
  CrlCacheOptions options;
  options.own_issuer_thumbprints = {root_->certificate.Sha256Thumbprint(),
                                    intermediate_->certificate.Sha256Thumbprint()};
  auto cache = StartCache(std::move(options));
  EXPECT_TRUE(Check(*cache));
}

TEST_F(CrlCacheTest, BoundsTheWaitForAFirstFetch) {
  std::atomic<bool> release = false;
  auto cache = CrlCache::Start(
      {.request_wait = 100ms, .poll_interval = 1h},
      [&release](const std::string&) -> Result<std::string> {
        while (!release) std::this_thread::sleep_for(10ms);
        return std::unexpected(Unavailable("released"));
      },
      clock_);
  ASSERT_TRUE(cache);
  auto started = std::chrono::steady_clock::now();
  auto checked = Check(**cache);
  auto waited = std::chrono::steady_clock::now() - started;
  release = true;
  ASSERT_FALSE(checked);
  EXPECT_THAT(checked.error().message(), HasSubstr("timed out"));
  EXPECT_LT(waited, 2s);
}

TEST_F(CrlCacheTest, HotReloadsAConfiguredFile) {
  const std::string file = (dir_ / "intermediate.crl").string();
  const std::string root_file = (dir_ / "root.pem.crl").string();
  ASSERT_TRUE(WriteFileAtomically(file, Crl(*intermediate_, {}), 0644));
  // PEM is accepted as well as DER.
  auto root_crl = Crl(*root_, {});
  std::string pem;
  {
    const auto* p = reinterpret_cast<const unsigned char*>(root_crl.data());
    ossl::UniquePtr<X509_CRL> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(root_crl.size())));
    ossl::UniquePtr<BIO> mem(BIO_new(BIO_s_mem()));
    ASSERT_EQ(PEM_write_bio_X509_CRL(mem.get(), crl.get()), 1);
    char* data = nullptr;
    long length = BIO_get_mem_data(mem.get(), &data);
    pem.assign(data, static_cast<size_t>(length));
  }
  ASSERT_TRUE(WriteFileAtomically(root_file, pem, 0644));
  auto cache = StartCache({.files = {file, root_file}, .fetch_distribution_points = false});
  ASSERT_TRUE(Check(*cache));
  ASSERT_TRUE(WriteFileAtomically(file, Crl(*intermediate_, {leaf_.get()}), 0644));
  cache->RefreshDue();
  auto checked = Check(*cache);
  ASSERT_FALSE(checked);
  EXPECT_THAT(checked.error().message(), HasSubstr("is revoked"));
  // A broken rewrite keeps the last good copy.
  ASSERT_TRUE(WriteFileAtomically(file, "oops", 0644));
  cache->RefreshDue();
  EXPECT_FALSE(Check(*cache));
}

TEST_F(CrlCacheTest, StartFails_OnAConfiguredFileThatIsNotACrl) {
  auto cache = CrlCache::Start({.files = {(dir_ / "missing.crl").string()}},
                               [](const std::string&) -> Result<std::string> { return ""; },
                               clock_);
  ASSERT_FALSE(cache);
  EXPECT_THAT(cache.error().message(), HasSubstr("missing.crl"));
}

TEST(HttpGetTest, FailsUnavailable_WhenNothingListens) {
  auto got = net::HttpGet("http://127.0.0.1:1/x.crl", {.timeout = 2s});
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(got.error().message(), HasSubstr("fetching http://127.0.0.1:1/x.crl"));
}

TEST(HttpGetTest, RefusesHttps) {
  auto got = net::HttpGet("https://example.com/x.crl");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace devid::attestation
