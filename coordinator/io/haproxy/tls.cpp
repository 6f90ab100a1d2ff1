#include "coordinator/io/haproxy/tls.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <memory>
#include <sstream>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace tide::haproxy {
namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;

tl::expected<std::string, std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return tl::make_unexpected(path + ": cannot read the file");
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return tl::make_unexpected(path + ": cannot read the file");
  return text.str();
}

Bio memory_bio(const std::string& text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// The PEM blocks of `text` that hold a private key (`keys`), or all the
// others (the chain HAProxy serves, leaf first), in order.
std::string pem_blocks(const std::string& text, bool keys) {
  std::string out;
  std::istringstream in(text);
  std::string line;
  bool keep = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("-----BEGIN ", 0) == 0) keep = (line.find("PRIVATE KEY-----") != std::string::npos) == keys;
    if (keep && !line.empty()) out += line + "\n";
    if (line.rfind("-----END ", 0) == 0) keep = false;
  }
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::vector<std::string> certificate_names(X509* cert) {
  std::vector<std::string> names;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
      if (name->type != GEN_DNS) continue;
      const auto* data = ASN1_STRING_get0_data(name->d.dNSName);
      names.push_back(lower(std::string(reinterpret_cast<const char*>(data),
                                        static_cast<std::size_t>(ASN1_STRING_length(name->d.dNSName)))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    char cn[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0) {
      names.push_back(lower(cn));
    }
  }
  return names;
}

std::string serial_hex(X509* cert) {
  std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!bn) return "";
  char* hex = BN_bn2hex(bn.get());
  std::string out = hex != nullptr ? hex : "";
  OPENSSL_free(hex);
  return out;
}

}  // namespace

tl::expected<PemBundle, std::string> load_pem_bundle(const std::string& cert, const std::string& key) {
  auto cert_text = read_file(cert);
  if (!cert_text) return tl::make_unexpected(cert_text.error());
  std::string key_file = key.empty() ? cert : key;
  std::string key_text = *cert_text;
  if (!key.empty()) {
    auto text = read_file(key);
    if (!text) return tl::make_unexpected(text.error());
    key_text = std::move(*text);
  }
  const std::string chain = pem_blocks(*cert_text, false);
  const std::string keys = pem_blocks(key_text, true);

  Bio chain_bio = memory_bio(chain);
  X509Ptr leaf(PEM_read_bio_X509(chain_bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!leaf) return tl::make_unexpected(cert + ": holds no PEM certificate");
  Bio key_bio = memory_bio(keys);
  // A pass phrase cannot be typed in: an encrypted key is refused.
  Key pkey(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
  ERR_clear_error();
  if (!pkey) {
    return tl::make_unexpected(key_file + ": holds no private key" +
                               std::string(keys.find("ENCRYPTED") != std::string::npos ? " without a pass phrase" : "") +
                               (key.empty() ? " (give it in the same file or as key)" : ""));
  }
  if (X509_check_private_key(leaf.get(), pkey.get()) != 1) {
    ERR_clear_error();
    return tl::make_unexpected(key_file + ": the private key does not belong to the certificate in " + cert);
  }
  PemBundle bundle;
  bundle.text = chain + keys;
  bundle.names = certificate_names(leaf.get());
  bundle.serial = serial_hex(leaf.get());
  return bundle;
}

}  // namespace tide::haproxy
