#pragma once

// The device SDK's certificate renewal: when a device's certificate has lived a set fraction of
// its lifetime, it is renewed (EST simplereenroll), with a new key by default, and the new
// credential replaces the old one only once it is proven. A failed attempt backs off and leaves
// the working credential as it was.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/random.h"
#include "base/result.h"
#include "devid/device_key.h"
#include "devid/est_client.h"
#include "keys/key_store.h"
#include "pki/certificate.h"

namespace devid::sdk {

// RenewalPolicy says when to renew, how, and how to retry.
struct RenewalPolicy {
  // renew_at_fraction is the share of the certificate's lifetime (notBefore to notAfter) after
  // which it is due, in (0, 1].
  double renew_at_fraction = 2.0 / 3.0;
  // new_key rotates the key: the renewed certificate is for a fresh key of the same algorithm,
  // made in the same key store beside the old one (a file, or an object in the same PKCS #11
  // token). false keeps the key.
  bool new_key = true;
  // A failed attempt waits first_retry, doubling per consecutive failure up to max_retry, each
  // wait drawn at random from its upper half so that a fleet does not retry in step.
  std::chrono::seconds first_retry{60};
  std::chrono::seconds max_retry{6 * 3600};
};

// RenewalDueAt returns when certificate is due for renewal: notBefore + fraction × lifetime.
std::chrono::system_clock::time_point RenewalDueAt(const pki::Certificate& certificate,
                                                   double fraction);

// RetryBackoff computes the waits between failed attempts: exponential with jitter.
class RetryBackoff {
 public:
  // RetryBackoff keeps a reference to random, which must outlive it.
  RetryBackoff(std::chrono::seconds first, std::chrono::seconds max, Random& random)
      : first_(first), max_(max), random_(random) {}

  // Failed records a failure and returns how long to wait before the next attempt: a uniformly
  // random time in [d/2, d], d = min(max, first × 2^(failures − 1)).
  std::chrono::seconds Failed();
  // Succeeded resets the count of consecutive failures.
  void Succeeded() { failures_ = 0; }
  int failures() const { return failures_; }

 private:
  std::chrono::seconds first_;
  std::chrono::seconds max_;
  Random& random_;
  int failures_ = 0;
};

// Reenrolled is what a CA answered a renewal with.
struct Reenrolled {
  pki::Certificate certificate;
  // intermediates are CA certificates that may complete the path to the trust bundle; they are
  // not trusted for that.
  std::vector<pki::Certificate> intermediates;
};

// Reenroller obtains a renewed certificate. It is what CertificateRenewer needs from a CA.
class Reenroller {
 public:
  virtual ~Reenroller() = default;
  // Reenroll asks for a certificate of current's subject for new_key (current_key itself when the
  // key is kept), authenticating with current and current_key. It fails with the transport's or
  // the CA's error; the answer is checked by the caller.
  virtual Result<Reenrolled> Reenroll(const pki::Certificate& current,
                                      std::shared_ptr<const keys::Key> current_key,
                                      const keys::Key& new_key) = 0;
};

// EstReenroller renews through est: its CA certificates as intermediates, then simplereenroll.
// est must outlive the result.
std::unique_ptr<Reenroller> EstReenroller(EstClient& est);

// DeviceCredential says where a device keeps its certificate and key.
struct DeviceCredential {
  std::string certificate_path;  // PEM: the certificate, then the CA certificates of its path
  std::string key_uri;           // file:… or pkcs11:… (keys/key_uri.h)
};

// RenewalReport says what a RenewIfDue call did.
struct RenewalReport {
  bool renewed = false;
  std::string subject;  // the certificate's subject, RFC 2253
  std::string serial;   // the certificate in use now (the new one when renewed)
  std::string key_uri;  // its key's URI, secrets redacted
  std::chrono::system_clock::time_point not_after;
  std::chrono::system_clock::time_point due;  // when that certificate is due for renewal
};

// CertificateRenewer renews one device credential. Not thread-safe.
//
// A renewal makes the new key (with RenewalPolicy::new_key) beside the old one (the file's path
// or the token object's label + ".next"), obtains the certificate from the reenroller, and proves
// it: it must verify to the trust bundle for TLS client use at the clock's time (RFC 5280 §6,
// X.509 strict), certify the new key and keep the old certificate's subject. Only then is it
// committed: the certificate is written to certificate_path + ".next" (mode 0600, synced), the
// new key put in the old one's place (a file renamed over the old one; in a token the old key
// pair destroyed and the new one relabelled to the old label), and the certificate renamed over
// the old one. Any failure before that deletes the new key and leaves the old certificate and key
// untouched. A commit cut short (power loss) is completed or undone by the next call, whichever
// leaves a certificate that matches its key.
class CertificateRenewer {
 public:
  // CertificateRenewer keeps references to reenroller, clock and random, which must outlive it.
  // trust_bundle_pem holds the roots renewed certificates must chain to; key_options say how to
  // reach the key's store.
  CertificateRenewer(DeviceCredential credential, std::string trust_bundle_pem,
                     RenewalPolicy policy, DeviceKeyOptions key_options, Reenroller& reenroller,
                     const Clock& clock, Random& random);

  // RenewIfDue renews the credential when it is due (at once with force), else reports when it
  // will be. After a failure it makes no attempt before next_attempt() and reports that time as
  // due. It fails with kNotFound / kInvalidArgument when the certificate or key cannot be read,
  // kFailedPrecondition when they do not belong together, when a new key is asked for a token key
  // without an object label, with an id or a pin-value, or when the new certificate is not proven
  // (naming why), kUnauthenticated when the new certificate does not verify to the trust bundle,
  // else with the reenroller's error; each failure leaves the credential as it was.
  Result<RenewalReport> RenewIfDue(bool force = false);

  // next_attempt is the earliest time RenewIfDue tries again after a failure (the epoch when the
  // last attempt did not fail).
  std::chrono::system_clock::time_point next_attempt() const { return next_attempt_; }

 private:
  Result<RenewalReport> Renew(const pki::Certificate& current,
                              const std::vector<pki::Certificate>& current_chain,
                              std::shared_ptr<const keys::Key> current_key);

  DeviceCredential credential_;
  std::string trust_bundle_pem_;
  RenewalPolicy policy_;
  DeviceKeyOptions key_options_;
  Reenroller& reenroller_;
  const Clock& clock_;
  RetryBackoff backoff_;
  std::chrono::system_clock::time_point next_attempt_{};
};

}  // namespace devid::sdk
