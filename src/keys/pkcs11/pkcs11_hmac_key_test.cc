// HMAC keys in a PKCS #11 token (SoftHSM2): the token's CKM_SHA256_HMAC equals the software HMAC
// under the same key (RFC 4231 vectors), the key cannot be read back, and every refusal leaves
// the token as it was.

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "base/hex.h"
#include "keys/pkcs11/pkcs11_key_store.h"
#include "keys/testing/softhsm_token.h"
#include "ossl/mac.h"

namespace devid::keys {
namespace {

using testing::RunShell;
using testing::SoftHsmToken;

std::vector<uint8_t> Repeat(uint8_t byte, size_t n) { return std::vector<uint8_t>(n, byte); }

// Rfc4231Case is one RFC 4231 §4 test case.
struct Rfc4231Case {
  const char* name;
  std::vector<uint8_t> key;
  std::string data;
  const char* hmac_sha256;
};

// Rfc4231LongKeyCases are the RFC 4231 cases whose key is at least 32 bytes, the store's minimum.
std::vector<Rfc4231Case> Rfc4231LongKeyCases() {
  return {
      {"4.7", Repeat(0xaa, 131), "Test Using Larger Than Block-Size Key - Hash Key First",
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {"4.8", Repeat(0xaa, 131),
       "This is a test using a larger than block-size key and a larger than block-size data. The "
       "key needs to be hashed before being used by the HMAC algorithm.",
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
}

// Rfc4231ShortKeys are the other cases' keys (4.2 to 4.6), all shorter than 32 bytes.
std::vector<std::vector<uint8_t>> Rfc4231ShortKeys() {
  std::vector<uint8_t> counting;
  for (uint8_t i = 1; i <= 25; ++i) counting.push_back(i);
  return {Repeat(0x0b, 20), {'J', 'e', 'f', 'e'}, Repeat(0xaa, 20), counting, Repeat(0x0c, 20)};
}

class Pkcs11HmacKeyTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(token_.ok()) << token_.init_output(); }

  KeyUri Uri(std::string_view object, std::string_view pin_query = "") const {
    std::string query =
        pin_query.empty() ? "pin-source=" + token_.pin_file() : std::string(pin_query);
    auto uri = ParseKeyUri(std::string("pkcs11:token=") + SoftHsmToken::kLabel +
                           ";object=" + std::string(object) + "?" + query);
    EXPECT_TRUE(uri.has_value());
    return *uri;
  }

  // Pkcs11Tool runs pkcs11-tool logged in to the test token with args; returns its exit status.
  int Pkcs11Tool(const std::string& args, std::string* output) const {
    return RunShell(std::string("pkcs11-tool --module ") + DEVID_SOFTHSM2_MODULE +
                        " --token-label " + SoftHsmToken::kLabel + " --login --pin " +
                        SoftHsmToken::kPin + " " + args,
                    output);
  }

  // SecretKeyListing is pkcs11-tool's listing of the token's secret keys.
  std::string SecretKeyListing() const {
    std::string output;
    EXPECT_EQ(Pkcs11Tool("--list-objects --type secrkey", &output), 0) << output;
    return output;
  }

  SoftHsmToken token_;  // first: SOFTHSM2_CONF must be set before the module loads
  Pkcs11KeyStore store_{DEVID_SOFTHSM2_MODULE};
};

TEST_F(Pkcs11HmacKeyTest, Computes_Rfc4231Vectors_AsSoftwareDoes) {
  for (const Rfc4231Case& c : Rfc4231LongKeyCases()) {
    SCOPED_TRACE(std::string("RFC 4231 §") + c.name);
    auto key = store_.ImportHmacKey(Uri(std::string("rfc4231-") + c.name), c.key);
    ASSERT_TRUE(key.has_value()) << key.error().message();
    auto mac = (*key)->HmacSha256(c.data);
    ASSERT_TRUE(mac.has_value()) << mac.error().message();
    EXPECT_EQ(HexEncode(*mac), c.hmac_sha256);
    EXPECT_EQ(*mac, ossl::HmacSha256(c.key, c.data));
  }
}

TEST_F(Pkcs11HmacKeyTest, Loads_ImportedKey_InAnotherStore_WithTheSameMac) {
  std::vector<uint8_t> key_bytes = Repeat(0x5a, 64);  // a DPS individual key's size
  auto imported = store_.ImportHmacKey(Uri("sas"), key_bytes);
  ASSERT_TRUE(imported.has_value()) << imported.error().message();
  auto named = ParseKeyUri((*imported)->uri());
  ASSERT_TRUE(named.has_value());
  EXPECT_EQ(named->PathAttribute("id").value_or("").size(), 16u) << (*imported)->uri();

  Pkcs11KeyStore other(DEVID_SOFTHSM2_MODULE);
  auto loaded = other.LoadHmacKey(Uri("sas"));
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message();
  std::string message = "0ne00000A0/registrations/device-1\n1767225600";
  auto mac = (*loaded)->HmacSha256(message);
  ASSERT_TRUE(mac.has_value()) << mac.error().message();
  EXPECT_EQ(*mac, ossl::HmacSha256(key_bytes, message));
}

TEST_F(Pkcs11HmacKeyTest, Imports_SensitiveKey_ThatPkcs11ToolCannotRead) {
  ASSERT_TRUE(store_.ImportHmacKey(Uri("sas"), Repeat(0x42, 32)).has_value());
  std::string listing = SecretKeyListing();
  EXPECT_NE(listing.find("label:      sas"), std::string::npos) << listing;
  // The Access line lists flags separated by ", ": "sensitive" must be one and "extractable" must
  // not. (An imported key is not "never extractable" by definition, PKCS #11 v2.40 §4.10: it
  // existed outside the token once.)
  size_t access = listing.find("Access:");
  ASSERT_NE(access, std::string::npos) << listing;
  std::string flags = listing.substr(access + 7, listing.find('\n', access) - access - 7) + ",";
  bool sensitive = false;
  for (size_t comma = flags.find(','), start = 0; comma != std::string::npos;
       start = comma + 1, comma = flags.find(',', start)) {
    std::string flag = flags.substr(start, comma - start);
    flag.erase(0, flag.find_first_not_of(' '));
    EXPECT_NE(flag, "extractable") << flags;
    sensitive = sensitive || flag == "sensitive";
  }
  EXPECT_TRUE(sensitive) << flags;

  std::string output;
  EXPECT_NE(Pkcs11Tool("--read-object --type secrkey --label sas", &output), 0) << output;
  EXPECT_EQ(output.find("42424242"), std::string::npos) << "key bytes printed";
  EXPECT_EQ(output.find("BBBBBBBB"), std::string::npos) << "key bytes printed";
}

TEST_F(Pkcs11HmacKeyTest, Computes_FromManyThreadsAtOnce) {
  std::vector<uint8_t> key_bytes = Repeat(0x17, 32);
  auto key = store_.ImportHmacKey(Uri("threads"), key_bytes);
  ASSERT_TRUE(key.has_value()) << key.error().message();
  std::vector<std::thread> threads;
  std::atomic<int> good = 0;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        std::string message = std::to_string(t) + "/" + std::to_string(i);
        auto mac = (*key)->HmacSha256(message);
        good += mac.has_value() && *mac == ossl::HmacSha256(key_bytes, message) ? 1 : 0;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(good.load(), 200);
}

TEST_F(Pkcs11HmacKeyTest, Rejects_ImportOverAnExistingKey_KeepingTheFirst) {
  std::vector<uint8_t> first = Repeat(0x01, 32);
  ASSERT_TRUE(store_.ImportHmacKey(Uri("sas"), first).has_value());
  auto second = store_.ImportHmacKey(Uri("sas"), Repeat(0x02, 32));
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_NE(second.error().message().find("already exists"), std::string::npos);
  auto loaded = store_.LoadHmacKey(Uri("sas"));
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message();
  EXPECT_EQ(*(*loaded)->HmacSha256("m"), ossl::HmacSha256(first, "m"));
}

TEST_F(Pkcs11HmacKeyTest, Rejects_KeysShorterThan32Bytes_CreatingNothing) {
  for (const std::vector<uint8_t>& short_key : Rfc4231ShortKeys()) {
    auto key = store_.ImportHmacKey(Uri("short"), short_key);
    ASSERT_FALSE(key.has_value());
    EXPECT_EQ(key.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(
        key.error().message().find(std::to_string(short_key.size()) + " bytes; expected 32 to 512"),
        std::string::npos)
        << key.error().message();
  }
  EXPECT_EQ(SecretKeyListing().find("label:"), std::string::npos);
}

TEST_F(Pkcs11HmacKeyTest, Rejects_WrongPin_CreatingNothing) {
  auto key = store_.ImportHmacKey(Uri("sas", "pin-value=0000"), Repeat(0x42, 32));
  ASSERT_FALSE(key.has_value());
  EXPECT_EQ(key.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(key.error().message().find("CKR_PIN_INCORRECT"), std::string::npos);
  EXPECT_EQ(key.error().message().find("0000"), std::string::npos) << "PIN leaked";
  EXPECT_EQ(SecretKeyListing().find("label:"), std::string::npos);
}

TEST_F(Pkcs11HmacKeyTest, Rejects_MissingToken) {
  auto uri = ParseKeyUri("pkcs11:token=no-such-token;object=sas?pin-value=1234");
  auto key = store_.LoadHmacKey(*uri);
  ASSERT_FALSE(key.has_value());
  EXPECT_EQ(key.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(key.error().message().find("no PKCS #11 token matches"), std::string::npos);
  EXPECT_EQ(key.error().message().find("1234"), std::string::npos) << "PIN leaked";
}

TEST_F(Pkcs11HmacKeyTest, Rejects_LoadOfAMissingKey) {
  auto key = store_.LoadHmacKey(Uri("nothing-here"));
  ASSERT_FALSE(key.has_value());
  EXPECT_EQ(key.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(key.error().message().find("no symmetric key matches"), std::string::npos)
      << key.error().message();
}

TEST_F(Pkcs11HmacKeyTest, Rejects_LoadOfASigningKeyAsHmacKey) {
  ASSERT_TRUE(store_.Create(Uri("ec"), KeyAlgorithm::kEcdsaP256).has_value());
  auto key = store_.LoadHmacKey(Uri("ec"));
  ASSERT_FALSE(key.has_value());
  EXPECT_EQ(key.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace devid::keys
