#pragma once

#include "base/result.h"
#include "registry/ca_certificate.h"
#include "registry/store_codec.h"

// The column order of a ca_certificates row (each dialect's ca_certificate_queries.h), written
// once for both SQL back ends, with the Params and Columns of row_codec.h.
namespace devid::registry::row_codec {

// BindCaCertificate binds a ca_certificates row. The certificate's strings are referred to, so it
// must outlive the statement's run.
template <typename Params>
void BindCaCertificate(Params& p, const CaCertificate& c) {
  p.Text(c.name);
  p.Blob(c.der);
  p.Text(c.sha256_thumbprint);
  p.Text(c.subject);
  p.Int(c.verified ? 1 : 0);
  p.Text(c.verification_code_hash);
  p.Int(c.verification_code_hash.empty() ? 0 : store_codec::ToMicros(c.verification_code_expires));
  p.Text(c.etag);
  p.Int(store_codec::ToMicros(c.created));
  p.Int(store_codec::ToMicros(c.updated));
}

// ReadCaCertificate reads a ca_certificates row, in BindCaCertificate's order.
template <typename Columns>
Result<CaCertificate> ReadCaCertificate(Columns& c) {
  CaCertificate r;
  r.name = c.Text();
  DEVID_ASSIGN_OR_RETURN(r.der, c.Blob());
  r.sha256_thumbprint = c.Text();
  r.subject = c.Text();
  r.verified = c.Bool();
  r.verification_code_hash = c.Text();
  r.verification_code_expires = c.Time();
  r.etag = c.Text();
  r.created = c.Time();
  r.updated = c.Time();
  return r;
}

}  // namespace devid::registry::row_codec
