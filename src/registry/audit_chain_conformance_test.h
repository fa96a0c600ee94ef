#pragma once

// The audit chain part of the Registry conformance suite (registry_conformance_test.h): every
// back end chains its appends and VerifyAuditChain names the first record an outside writer
// changed, deleted or replayed. Besides Open, the Factory needs
//
//   Status ExecSql(std::string_view sql);
//
// which runs sql directly on the factory's store, as someone with database access would.

#include <string>
#include <vector>

#include "registry/audit_chain.h"
#include "registry/registry_conformance_test.h"

namespace devid::registry::conformance {

template <typename Factory>
class AuditChainConformanceTest : public RegistryConformanceTest<Factory> {
 protected:
  // WriteSome makes four audited writes and returns the whole log.
  std::vector<AuditRecord> WriteSome() {
    this->PutOrDie(MakeEnrollment("device-1"));
    this->PutOrDie(MakeEnrollment("device-2"));
    EXPECT_TRUE(this->registry().SetSetting("device.idScope", "0ne00000001", this->actor_));
    EXPECT_TRUE(this->registry().DeleteEnrollment("device-1", std::nullopt, this->actor_));
    std::vector<AuditRecord> log = this->AllAudit();
    EXPECT_GE(log.size(), 4u);
    return log;
  }

  void Sql(const std::string& sql) {
    Status done = this->factory_.ExecSql(sql);
    ASSERT_TRUE(done.has_value()) << sql << ": " << done.error().message();
  }

  AuditVerification VerifyOrDie() {
    auto verified = VerifyAuditChain(this->registry());
    EXPECT_TRUE(verified.has_value()) << verified.error().message();
    return verified.value_or(AuditVerification{});
  }
};

TYPED_TEST_SUITE_P(AuditChainConformanceTest);

TYPED_TEST_P(AuditChainConformanceTest, Chains_EveryAppendAndVerifies) {
  std::vector<AuditRecord> log = this->WriteSome();
  std::string previous;
  for (const AuditRecord& r : log) {
    EXPECT_EQ(r.chain_hash, AuditChainHash(previous, r)) << "sequence " << r.sequence;
    previous = r.chain_hash;
  }
  this->Reopen();
  AuditVerification v = this->VerifyOrDie();
  EXPECT_EQ(v.broken_at, 0) << v.reason;
  EXPECT_EQ(v.records, 4);
  EXPECT_EQ(v.unchained, 0);
  EXPECT_EQ(v.head_sequence, log.back().sequence);
  EXPECT_EQ(v.head_hash, log.back().chain_hash);
}

TYPED_TEST_P(AuditChainConformanceTest, Verifies_EmptyLog) {
  AuditVerification v = this->VerifyOrDie();
  EXPECT_EQ(v.broken_at, 0);
  EXPECT_EQ(v.records, 0);
  EXPECT_EQ(v.head_hash, "");
}

TYPED_TEST_P(AuditChainConformanceTest, Names_ChangedRecord) {
  std::vector<AuditRecord> log = this->WriteSome();
  this->Sql("UPDATE audit_log SET outcome = 'failure' WHERE sequence = " +
            std::to_string(log[1].sequence));
  AuditVerification v = this->VerifyOrDie();
  EXPECT_EQ(v.broken_at, log[1].sequence);
  EXPECT_THAT(v.reason, HasSubstr("does not match"));
  EXPECT_EQ(v.head_sequence, log[0].sequence);  // the last record that verified
}

TYPED_TEST_P(AuditChainConformanceTest, Names_RecordAfterDeletedOne) {
  std::vector<AuditRecord> log = this->WriteSome();
  this->Sql("DELETE FROM audit_log WHERE sequence = " + std::to_string(log[2].sequence));
  EXPECT_EQ(this->VerifyOrDie().broken_at, log[3].sequence);
}

TYPED_TEST_P(AuditChainConformanceTest, Names_ReplayedRecord) {
  std::vector<AuditRecord> log = this->WriteSome();
  this->Sql(
      "INSERT INTO audit_log (time_us, actor, action, object, outcome, chain_hash) "
      "SELECT time_us, actor, action, object, outcome, chain_hash FROM audit_log "
      "WHERE sequence = " +
      std::to_string(log[3].sequence));
  std::vector<AuditRecord> tampered = this->AllAudit();
  ASSERT_EQ(tampered.size(), 5u);
  EXPECT_EQ(this->VerifyOrDie().broken_at, tampered.back().sequence);
}

TYPED_TEST_P(AuditChainConformanceTest, Names_RecordWithItsHashRemoved) {
  std::vector<AuditRecord> log = this->WriteSome();
  this->Sql("UPDATE audit_log SET chain_hash = '' WHERE sequence = " +
            std::to_string(log[2].sequence));
  AuditVerification v = this->VerifyOrDie();
  EXPECT_EQ(v.broken_at, log[2].sequence);
  EXPECT_THAT(v.reason, HasSubstr("no chain hash"));
}

// Records from before migration 6 have no hash; the chain starts at the first record after them.
TYPED_TEST_P(AuditChainConformanceTest, Starts_ChainAfterUnchainedRecords) {
  for (int i = 0; i < 2; ++i) {
    this->Sql(
        "INSERT INTO audit_log (time_us, actor, action, object, outcome, chain_hash) "
        "VALUES (1, 'cli', 'setting.set', 'old', 'success', '')");
  }
  this->WriteSome();
  AuditVerification v = this->VerifyOrDie();
  EXPECT_EQ(v.broken_at, 0) << v.reason;
  EXPECT_EQ(v.records, 6);
  EXPECT_EQ(v.unchained, 2);
}

TYPED_TEST_P(AuditChainConformanceTest, RecordAudit_AppendsAChainedRecord) {
  this->WriteSome();
  ASSERT_TRUE(this->registry().RecordAudit("token.issue", "device-2", "aud=b scope=s",
                                           this->actor_));
  std::vector<AuditRecord> log = this->AllAudit();
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back().action, "token.issue");
  EXPECT_EQ(log.back().object, "device-2");
  EXPECT_EQ(log.back().outcome, "aud=b scope=s");
  EXPECT_EQ(log.back().actor, this->actor_.name);
  AuditVerification v = this->VerifyOrDie();
  EXPECT_EQ(v.broken_at, 0) << v.reason;
  EXPECT_EQ(v.head_hash, log.back().chain_hash);
}

REGISTER_TYPED_TEST_SUITE_P(AuditChainConformanceTest, Chains_EveryAppendAndVerifies,
                            RecordAudit_AppendsAChainedRecord,
                            Verifies_EmptyLog, Names_ChangedRecord, Names_RecordAfterDeletedOne,
                            Names_ReplayedRecord, Names_RecordWithItsHashRemoved,
                            Starts_ChainAfterUnchainedRecords);

}  // namespace devid::registry::conformance
