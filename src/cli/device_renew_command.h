#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "base/result.h"
#include "cli/output.h"

namespace devid::cli {

// AddDeviceRenewCommand registers `devid device renew` under device: the device's certificate is
// renewed through EST simplereenroll when it is due (or at once with --force), with a new key
// unless --same-key, and replaces the old one only once proven (sdk::CertificateRenewer). A
// command that fails prints the error to stderr and sets exit_code to 1.
void AddDeviceRenewCommand(CLI::App& device, int& exit_code);

// ShowDeviceCertificate prints the certificate in certificate_file for `devid device show
// --cert`: identity, issuer, validity and when renewal is due at renew_at (a fraction of its
// lifetime). Fails with kNotFound or kInvalidArgument when the file is missing or holds no
// certificate.
Status ShowDeviceCertificate(const std::string& certificate_file, double renew_at,
                             OutputFormat format);

}  // namespace devid::cli
