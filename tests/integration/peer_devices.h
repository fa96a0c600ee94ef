#pragma once

// Devices for the peer-token tests, enrolled on a `devid serve` the way a technician does it:
// each device's SAS key, key and certificate are files in one directory.

#include <gtest/gtest.h>

#include <string>

#include "base/file.h"
#include "est_client.h"
#include "server_process.h"

namespace devid::testing {

// The symmetric keys of the peer tests' devices A, B and C (base64 of 32 bytes).
inline constexpr char kPeerKeyA[] = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
inline constexpr char kPeerKeyB[] = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
inline constexpr char kPeerKeyC[] = "Y2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2M=";

// PeerKeyUri is the key store URI of device's key, <dir>/<device>.key, sealed with the
// passphrase in <dir>/passphrase.
inline std::string PeerKeyUri(const std::string& dir, const std::string& device) {
  return "file:" + dir + "/" + device + ".key?passphrase-file=" + dir + "/passphrase";
}

inline std::string PeerCertificate(const std::string& dir, const std::string& device) {
  return dir + "/" + device + ".pem";
}

// AddSasDevice adds an individual enrollment for device with symmetric_key and keeps the key
// in <dir>/<device>.sas (owner-only), as the device holds it.
inline void AddSasDevice(const ServerProcess& server, const std::string& dir,
                         const std::string& device, const std::string& symmetric_key) {
  CommandResult added = AddSasEnrollment(server, device, symmetric_key);
  ASSERT_EQ(added.exit_code, 0) << Describe(added);
  ASSERT_TRUE(WriteFileAtomically(dir + "/" + device + ".sas", symmetric_key + "\n", 0600));
}

// EnrollPeerDevice adds device as AddSasDevice does and gets it its first certificate over EST
// with `devid device enroll` (key PeerKeyUri, certificate PeerCertificate); <dir>/passphrase
// must exist.
inline void EnrollPeerDevice(const ServerProcess& server, const std::string& dir,
                             const std::string& device, const std::string& symmetric_key) {
  ASSERT_NO_FATAL_FAILURE(AddSasDevice(server, dir, device, symmetric_key));
  CommandResult enrolled = RunCommand(
      {DEVID_BINARY, "device", "enroll", "--symmetric-key-file", dir + "/" + device + ".sas",
       "--key", PeerKeyUri(dir, device), "--cert-out", PeerCertificate(dir, device),
       "--registration-id", device, "--id-scope", server.id_scope(), "--endpoint",
       server.device_endpoint(), "--trust-bundle", server.trust_bundle_file()});
  ASSERT_EQ(enrolled.exit_code, 0) << Describe(enrolled);
}

}  // namespace devid::testing
