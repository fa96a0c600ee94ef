#pragma once

// The OpenSSL configuration of a third-party ("vendor") PKI for the X.509 tests, which make their
// certificates with `openssl req`, `openssl x509` and `openssl ca -extensions NAME`.

#include <string>
#include <string_view>

namespace devid::testing {

// kVendorPkiSections are the extension sections RFC 5280 wants: root, intermediate (pathlen 0),
// device (clientAuth) and server (serverAuth), plus the empty [req] distinguished name.
inline constexpr std::string_view kVendorPkiSections = R"cnf([req]
distinguished_name = dn
[dn]
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[device]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
)cnf";

// WriteVendorPkiConfig is shell that writes file with kVendorPkiSections followed by extra (more
// sections a test needs).
inline std::string WriteVendorPkiConfig(const std::string& file, std::string_view extra = "") {
  return "cat > " + file + " <<'CNF'\n" + std::string(kVendorPkiSections) + std::string(extra) +
         "CNF\n";
}

}  // namespace devid::testing
