#include "registry/audit_chain.h"

#include <gtest/gtest.h>

#include <chrono>

namespace devid::registry {
namespace {

AuditRecord Record(int64_t time_us, std::string actor, std::string action, std::string object) {
  return AuditRecord{.time = std::chrono::system_clock::time_point(
                         std::chrono::microseconds(time_us)),
                     .actor = std::move(actor),
                     .action = std::move(action),
                     .object = std::move(object),
                     .outcome = "success"};
}

// The expected hashes were computed independently (Python hashlib) from the encoding documented
// in audit_chain.h, so a change to the encoding cannot go unnoticed: stored chains depend on it.
TEST(AuditChainHashTest, Matches_DocumentedEncoding) {
  std::string first =
      AuditChainHash("", Record(1764165600000000, "cli", "setting.set", "device.idScope"));
  EXPECT_EQ(first, "bf320275c4cadbed7fa8fed2f61101486f81ff58eb4b87b5e54f2a7d22fdd98e");
  EXPECT_EQ(AuditChainHash(first, Record(1764165600000001, "service:registryWrite",
                                         "enrollment.create", "dev-1")),
            "e9e69e4da4e08832a0f193f0dd0dc7c444a4eb7387e0e84b281c7ffd4a0602e1");
}

// Length prefixes keep field boundaries: moving a character from one field to the next changes
// the hash.
TEST(AuditChainHashTest, Differs_WhenFieldBoundaryMoves) {
  EXPECT_NE(AuditChainHash("", Record(1, "ab", "c", "x")),
            AuditChainHash("", Record(1, "a", "bc", "x")));
}

TEST(AuditChainHashTest, Ignores_SequenceAndStoredHash) {
  AuditRecord a = Record(1, "cli", "setting.set", "x");
  AuditRecord b = a;
  b.sequence = 42;
  b.chain_hash = "anything";
  EXPECT_EQ(AuditChainHash("p", a), AuditChainHash("p", b));
}

}  // namespace
}  // namespace devid::registry
