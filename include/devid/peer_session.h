#pragma once

// Two devices authenticating each other directly (docs/peers.md): mutual TLS 1.3 on a plain TCP
// connection, each side presenting its devid certificate and checking the other's against its
// PeerTrust (cached trust bundle and CRLs). No server is involved.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "devid/peer_trust.h"

namespace devid::keys {
class Key;
}  // namespace devid::keys

namespace devid::sdk {

// PeerSessionOptions say who this device is and whom it accepts. trust must outlive every
// listener and connection made with these options.
struct PeerSessionOptions {
  std::string certificate_chain_pem;     // this device's devid certificate, leaf first
  std::shared_ptr<const keys::Key> key;  // its key (ECDSA), which signs the handshake in its store
  const PeerTrust* trust = nullptr;
  std::string expected_peer;         // the peer's CN must equal it; "" accepts any verified device
  std::chrono::seconds timeout{10};  // bounds the handshake and each read and write
};

// PeerConnection is an authenticated connection to a peer. Move-only; closes on destruction.
class PeerConnection {
 public:
  PeerConnection(PeerConnection&&) noexcept;
  PeerConnection& operator=(PeerConnection&&) noexcept;
  ~PeerConnection();

  // peer returns who the other side proved to be.
  const VerifiedPeer& peer() const;
  // WriteLine sends line and a newline. Fails with kUnavailable.
  Status WriteLine(std::string_view line);
  // ReadLine reads up to a newline (not returned), at most 4 KiB. Fails with kUnavailable, or
  // kUnauthenticated when the peer ended the connection with a TLS alert (it refused us).
  Result<std::string> ReadLine();

  class Impl;
  explicit PeerConnection(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

// PeerListener accepts peers on a TCP port. Move-only.
class PeerListener {
 public:
  // Listen binds host:port (port 0 picks one). Fails with kInvalidArgument on unusable options
  // (no trust, a key that does not match the certificate) and kUnavailable when it cannot bind.
  static Result<PeerListener> Listen(std::string_view host, uint16_t port,
                                     PeerSessionOptions options);
  PeerListener(PeerListener&&) noexcept;
  PeerListener& operator=(PeerListener&&) noexcept;
  ~PeerListener();

  // port returns the bound port.
  uint16_t port() const;
  // Accept waits for the next peer and runs the handshake. It fails with kUnauthenticated when
  // the peer's certificate is refused (PeerTrust::VerifyPeer's message; the peer gets a TLS
  // alert) and kUnavailable when the connection breaks; the listener stays usable either way.
  Result<PeerConnection> Accept();

  class Impl;

 private:
  explicit PeerListener(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ConnectToPeer connects to a listening peer and runs the handshake. It fails with
// kUnauthenticated when the peer's certificate is refused (PeerTrust::VerifyPeer's message),
// kUnavailable when it cannot be reached, and kInvalidArgument on unusable options.
Result<PeerConnection> ConnectToPeer(std::string_view host, uint16_t port,
                                     const PeerSessionOptions& options);

}  // namespace devid::sdk
