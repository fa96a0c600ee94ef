#pragma once

// The device SDK's server-signed commands (docs/commands.md): a device obeys a command only when
// its authenticated server signed it, for this device, recently, and never twice.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "pki/certificate.h"

namespace devid::sdk {

// CommandRefusal is why CommandVerifier::Accept dropped an envelope.
enum class CommandRefusal {
  kMalformed,         // not a devid command JWS: bad encoding, JSON, typ, crit or claims
  kUnsigned,          // alg "none" or no signature
  kUnknownSigner,     // x5t#S256 names no pinned command-signer certificate
  kBadSignature,      // the signature does not verify with the pinned key (tampered, other key)
  kSignerNotValid,    // the pinned certificate has expired or is not valid yet
  kOtherDevice,       // deviceId names another device
  kExpired,           // exp has passed (beyond the allowed clock skew)
  kNotYetValid,       // iat is in the future (beyond the allowed clock skew)
  kReplayed,          // seq is not above the last accepted one
  kStateUnavailable,  // the sequence state file could not be read or written
};

// CommandRefusalName returns a stable word for reason ("replayed", "bad-signature", ...).
std::string_view CommandRefusalName(CommandRefusal reason);

// CommandError is a refusal and a message a technician can act on; it never holds key material.
struct CommandError {
  CommandRefusal reason;
  std::string message;
};

// VerifiedCommand is an accepted command: its claims and the command JSON (compact text).
struct VerifiedCommand {
  std::string device_id;
  int64_t sequence = 0;
  std::chrono::system_clock::time_point issued_at;
  std::chrono::system_clock::time_point expires_at;
  std::string command_json;
  std::string signer_thumbprint;  // SHA-256 of the signer certificate, uppercase hex
};

// kMaxCommandClockSkew bounds the clock skew a device may allow for.
inline constexpr std::chrono::seconds kMaxCommandClockSkew{300};

// CommandVerifierOptions configure CommandVerifier.
struct CommandVerifierOptions {
  std::string device_id;                // this device's registration ID
  std::string signer_certificates_pem;  // the pinned command-signer certificate(s)
  // state_file keeps the last accepted sequence number ({"deviceId", "lastSequence"}, mode
  // 0600, replaced atomically); a missing file means none accepted yet.
  std::string state_file;
  std::chrono::seconds clock_skew{60};  // at most kMaxCommandClockSkew
  size_t max_envelope_bytes = 64 * 1024;
};

// CommandVerifier decides whether this device executes a command envelope (JWS compact
// serialization, RFC 7515 §7.1): the signature must verify with a pinned command-signer
// certificate named by the header's x5t#S256 and valid now, the claims must name this device,
// not have expired and carry a sequence number above the last accepted one, which Accept then
// records in the state file. Not safe for concurrent use of one state file (one process owns it).
class PinnedJwsVerifier;

class CommandVerifier {
 public:
  // Create checks options and keeps a reference to clock, which must outlive the verifier. Fails
  // with kInvalidArgument when the device ID is empty, no certificate is given or one is not an
  // ECDSA P-256/P-384 key, the skew is out of bounds, or the state file belongs to another
  // device or is not a state file.
  static Result<std::unique_ptr<CommandVerifier>> Create(CommandVerifierOptions options,
                                                         const Clock& clock);
  ~CommandVerifier();

  // Accept verifies envelope and, when it passes, records its sequence number and returns the
  // command. Every refusal is logged (reason, device, sequence; never the command or keys).
  std::expected<VerifiedCommand, CommandError> Accept(std::string_view envelope);

 private:
  CommandVerifier(CommandVerifierOptions options, std::unique_ptr<PinnedJwsVerifier> signers,
                  const Clock& clock);

  std::expected<VerifiedCommand, CommandError> Check(std::string_view envelope);

  CommandVerifierOptions options_;
  std::unique_ptr<PinnedJwsVerifier> signers_;
  const Clock& clock_;
};

}  // namespace devid::sdk
