#pragma once

// The device SDK's provisioning client: registers a device with devid (or any Azure DPS
// compatible service) over HTTPS (protocol notes §1) and tells it which hub it belongs to.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "devid/credential.h"

namespace devid::sdk {

// ProvisioningOptions say where to register and whom to trust. There is no way to skip server
// authentication: the server's chain must verify to trust_bundle_pem and its certificate must
// name server_name.
struct ProvisioningOptions {
  std::string host;  // the device endpoint's host name or IP address
  uint16_t port = 443;
  std::string server_name;       // the name the server certificate must carry; "" = host
  std::string trust_bundle_pem;  // the only roots the server may chain to (required)
  std::string id_scope;          // the service's ID scope
  std::string registration_id;   // "" for TPM = Azure's rule from the EK (protocol §4.1)
  std::string api_version = "2021-10-01";
  std::chrono::seconds timeout{30};  // per request
  int max_polls = 30;                // operation status reads before giving up
  // wait sleeps between polls for the server's Retry-After; tests may replace it.
  std::function<void(std::chrono::seconds)> wait;
  // quote_pcrs turns on measured boot for TPM registration (a devid extension): the SHA-256 PCRs
  // (0-23) that the enrollment's PCR policy selects. The service does not name them, so the
  // device must be told. Empty: the TPM's attestation key is neither created nor sent.
  std::vector<uint32_t> quote_pcrs;
};

// Assignment is the outcome of a successful registration.
struct Assignment {
  std::string registration_id;
  bool secondary_key_used = false;  // RegisterWithSymmetricKeys: the primary was rejected
  std::string assigned_hub;
  std::string device_id;
  std::string substatus;  // initialAssignment, deviceDataMigrated, ...
  // issued_certificate_chain_pem is the certificate the service issued for a registration's csr
  // (leaf first, then its issuing CA), or "" without one.
  std::string issued_certificate_chain_pem;
};

// ProvisioningClient runs DPS registrations. Not thread-safe; one registration at a time.
class ProvisioningClient {
 public:
  // ProvisioningClient keeps options; nothing is sent until a Register call.
  explicit ProvisioningClient(ProvisioningOptions options);

  // RegisterWithSymmetricKey registers options.registration_id (required) with a SAS token
  // signed by key (protocol notes §2.2) and polls the operation until it ends.
  // RegisterWithTpm runs the TPM challenge (§4.2): an unauthenticated PUT with the EK and SRK,
  // the 401 answer's activation blob installed into tpm, a SAS token signed inside the TPM, then
  // the same polling; the final answer's blob is installed again, as the Azure SDKs do. Both PUTs
  // carry the TPM's EK certificate when it has one, and with options.quote_pcrs its attestation
  // key; when the 401 answer carries an attestationChallenge, the second PUT adds the activated
  // AK credential and a quote of those PCRs over the challenge's nonce
  // (docs/device-provisioning.md, EK certificates and measured boot).
  //
  // Both fail with kInvalidArgument on missing options; kUnavailable when the server cannot be
  // reached; kUnauthenticated when its certificate is rejected or it refuses the device; the
  // server's error (its code mapped, its message and DPS errorCode in the text) on any other
  // answer; kFailedPrecondition when the registration ends "failed" or polling runs out.
  Result<Assignment> RegisterWithSymmetricKey(SasCredential& key);
  Result<Assignment> RegisterWithTpm(TpmCredential& tpm);

  // RegisterWithSymmetricKeys rolls over between an enrollment's two keys: it registers with
  // primary and, only when the service rejects that key (kUnauthenticated, e.g. the operator
  // replaced the primary key), once more with secondary. Assignment::secondary_key_used says
  // which key the service took, so the application can promote it. Other failures (unreachable
  // service, disabled enrollment) are returned without trying the secondary.
  Result<Assignment> RegisterWithSymmetricKeys(SasCredential& primary, SasCredential& secondary);

  // RegisterWithX509 registers over mutual TLS (protocol notes §3): credential's chain is the TLS
  // client certificate and its key signs the handshake inside its store; no SAS token is sent.
  // The registration ID is options.registration_id, or the leaf's common name when empty. With
  // csr_pem (a PEM PKCS #10 request whose subject is CN=<registration ID>), the service also
  // issues a certificate, returned in Assignment::issued_certificate_chain_pem
  // (docs/device-provisioning.md, Certificates at registration). Fails as above, and with
  // kInvalidArgument when csr_pem does not parse or the credential's key cannot sign for TLS.
  Result<Assignment> RegisterWithX509(const X509Credential& credential,
                                      std::string_view csr_pem = {});

 private:
  ProvisioningOptions options_;
};

}  // namespace devid::sdk
