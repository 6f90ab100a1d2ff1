// TLS certificates for HAProxy's frontends: reads a PEM file holding the
// certificate chain and its private key (or a certificate file and a key file),
// checks it with OpenSSL, and hands back the one PEM text HAProxy loads, the
// names the certificate answers for (SNI) and its serial number.
#pragma once

#include <string>
#include <vector>

#include <tl/expected.hpp>

namespace tide::haproxy {

struct PemBundle {
  std::string text;                // certificate chain, then the private key
  std::vector<std::string> names;  // DNS names of the subjectAltName, else the subject's CN (lower case)
  std::string serial;              // hex, upper case
};

// `cert`: a PEM file with the certificate chain (and the key when `key` is
// empty); `key`: a PEM file with the private key, or "". Errors name the file
// and what is wrong: unreadable, no certificate, no private key, a key that
// does not belong to the certificate.
[[nodiscard]] tl::expected<PemBundle, std::string> load_pem_bundle(const std::string& cert, const std::string& key);

}  // namespace tide::haproxy
