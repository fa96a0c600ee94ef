#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace devid::registry {

// DeviceCommand is the record of one command devid signed for a device (docs/commands.md): the
// sequence number the store gave it, when it was signed, until when it is valid, and the SHA-256
// of the command's JSON. The command body itself is not kept: the signed envelope went to the
// operator, and the record is for audit and for the sequence.
struct DeviceCommand {
  std::string device_id;  // the registration ID the command is addressed to
  int64_t sequence = 0;   // assigned by the store: 1, 2, 3, ... per device
  std::chrono::system_clock::time_point issued;
  std::chrono::system_clock::time_point expires;
  std::string body_sha256;  // hex, lowercase
};

// kAuditCommandSign is the audit action of a signed command (object = the device ID, outcome
// "success; sequence <n>").
inline constexpr std::string_view kAuditCommandSign = "command.sign";

}  // namespace devid::registry
