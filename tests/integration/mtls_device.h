#pragma once

// A device on the device API over mutual TLS, played by clients devid did not write: curl, and
// `openssl s_client` for certificates curl's TLS library refuses to send (SHA-1 signatures,
// RSA-1024 keys) at its default security level.

#include <cstdlib>
#include <string>

#include "keys/testing/softhsm_token.h"  // RunShell
#include "server_process.h"

namespace devid::testing {

// DeviceReply is what the device saw: the HTTP status (0 when no answer came) and the body.
struct DeviceReply {
  int status = 0;
  std::string body;
};

// CurlAsDevice sends `method` to path (below the server's ID scope) with client certificate
// cert_file (leaf first, then its intermediates) and key_file, and body as JSON when not empty.
inline DeviceReply CurlAsDevice(const ServerProcess& server, const std::string& method,
                                const std::string& path, const std::string& cert_file,
                                const std::string& key_file, const std::string& body = "") {
  std::string command = "curl -s -w '\\n%{http_code}' --cacert " + server.trust_bundle_file() +
                        " --cert " + cert_file + " --key " + key_file + " -X " + method;
  if (!body.empty()) command += " -H 'Content-Type: application/json' -d '" + body + "'";
  command +=
      " '" + server.device_endpoint() + "/" + server.id_scope() + path + "?api-version=2019-03-31'";
  std::string output;
  keys::testing::RunShell(command, &output);
  DeviceReply reply;
  size_t status_at = output.rfind('\n');
  if (status_at == std::string::npos) return reply;
  reply.status = std::atoi(output.c_str() + status_at + 1);
  reply.body = output.substr(0, status_at);
  return reply;
}

// RegisterAsDevice sends reg_id's register request as CurlAsDevice does.
inline DeviceReply RegisterAsDevice(const ServerProcess& server, const std::string& reg_id,
                                    const std::string& cert_file, const std::string& key_file) {
  return CurlAsDevice(server, "PUT", "/registrations/" + reg_id + "/register", cert_file, key_file,
                      "{\"registrationId\":\"" + reg_id + "\"}");
}

// SClientRegisterAsDevice sends reg_id's register request through `openssl s_client` with
// cert_file (the leaf, or leaf + intermediates also given as -cert_chain in extra) and key_file;
// extra holds more s_client flags.
inline DeviceReply SClientRegisterAsDevice(const ServerProcess& server, const std::string& reg_id,
                                           const std::string& cert_file,
                                           const std::string& key_file,
                                           const std::string& extra = "") {
  std::string request = "PUT /" + server.id_scope() + "/registrations/" + reg_id +
                        "/register?api-version=2019-03-31 HTTP/1.1\\r\\nHost: localhost\\r\\n"
                        "Content-Type: application/json\\r\\nContent-Length: 2\\r\\n"
                        "Connection: close\\r\\n\\r\\n{}";
  std::string output;
  keys::testing::RunShell("printf '" + request + "' | openssl s_client -quiet -connect 127.0.0.1:" +
                              std::to_string(server.port()) + " -CAfile " +
                              server.trust_bundle_file() + " -cert " + cert_file + " -key " +
                              key_file + " " + extra + " 2>/dev/null",
                          &output);
  DeviceReply reply;
  // s_client's own diagnostics may come first.
  if (size_t at = output.find("HTTP/1.1 "); at != std::string::npos) {
    reply.status = std::atoi(output.c_str() + at + 9);
  }
  if (size_t body = output.find("\r\n\r\n"); body != std::string::npos) {
    reply.body = output.substr(body + 4);
  }
  return reply;
}

}  // namespace devid::testing
