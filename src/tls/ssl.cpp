// SPDX-License-Identifier: MIT
// ssl::SSLContext and the TLS errors, over OpenSSL.
#include "asyncio/ssl.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "asyncio/errors.hpp"
#include "tls/ssl_internal.hpp"

namespace asyncio::ssl {

namespace {

class SslCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "ssl"; }
  std::string message(int reason) const override {
    const char* s = ERR_reason_error_string(ERR_PACK(ERR_LIB_SSL, 0, reason));
    return s ? s : "SSL error " + std::to_string(reason);
  }
};

int verify_flags(VerifyMode mode, Side side) noexcept {
  switch (mode) {
    case VerifyMode::none:
      return SSL_VERIFY_NONE;
    case VerifyMode::optional:
      return SSL_VERIFY_PEER;
    case VerifyMode::required:
      return SSL_VERIFY_PEER | (side == Side::server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
  }
  return SSL_VERIFY_NONE;
}

// ALPN's wire format: each name preceded by its length.
std::string alpn_wire(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const auto& p : protocols) {
    if (p.empty() || p.size() > 255) throw ValueError("ALPN protocols must be 1 to 255 bytes long");
    wire += static_cast<char>(p.size());
    wire += p;
  }
  return wire;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void* arg) {
  const auto* ours = static_cast<const std::string*>(arg);
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, reinterpret_cast<const unsigned char*>(ours->data()),
                            static_cast<unsigned int>(ours->size()), in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

const std::error_category& ssl_category() noexcept {
  static const SslCategory category;
  return category;
}

SSLContext::SSLContext(Side side)
    : side_(side),
      verify_mode_(side == Side::client ? VerifyMode::required : VerifyMode::none),
      check_hostname_(side == Side::client) {
  SSL_CTX* ctx = SSL_CTX_new(side == Side::client ? TLS_client_method() : TLS_server_method());
  if (!ctx) detail::throw_ssl_error("SSL_CTX_new");
  ctx_.reset(ctx, SSL_CTX_free);
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, verify_flags(verify_mode_, side_), nullptr);
  // The TLS layer gives SSL_write whole buffers and reads its output from a memory BIO.
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

void SSLContext::load_cert_chain(const std::string& certfile, const std::string& keyfile) {
  if (SSL_CTX_use_certificate_chain_file(native(), certfile.c_str()) != 1)
    detail::throw_ssl_error("load_cert_chain: " + certfile);
  const std::string& key = keyfile.empty() ? certfile : keyfile;
  if (SSL_CTX_use_PrivateKey_file(native(), key.c_str(), SSL_FILETYPE_PEM) != 1)
    detail::throw_ssl_error("load_cert_chain: " + key);
  if (SSL_CTX_check_private_key(native()) != 1) detail::throw_ssl_error("load_cert_chain: key does not match");
}

void SSLContext::load_verify_locations(const std::string& cafile, const std::string& capath) {
  if (cafile.empty() && capath.empty()) throw ValueError("cafile and capath cannot be both empty");
  if (SSL_CTX_load_verify_locations(native(), cafile.empty() ? nullptr : cafile.c_str(),
                                    capath.empty() ? nullptr : capath.c_str()) != 1)
    detail::throw_ssl_error("load_verify_locations");
}

void SSLContext::load_default_certs() {
  if (SSL_CTX_set_default_verify_paths(native()) != 1) detail::throw_ssl_error("load_default_certs");
}

void SSLContext::set_verify_mode(VerifyMode mode) {
  if (mode == VerifyMode::none && check_hostname_)
    throw ValueError("Cannot set verify_mode to CERT_NONE when check_hostname is enabled.");
  verify_mode_ = mode;
  SSL_CTX_set_verify(native(), verify_flags(mode, side_), nullptr);
}

void SSLContext::set_check_hostname(bool check) {
  check_hostname_ = check;
  if (check && verify_mode_ == VerifyMode::none) set_verify_mode(VerifyMode::required);
}

void SSLContext::set_alpn_protocols(const std::vector<std::string>& protocols) {
  std::string wire = alpn_wire(protocols);
  if (side_ == Side::client) {
    if (SSL_CTX_set_alpn_protos(native(), reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned int>(wire.size())) != 0)
      detail::throw_ssl_error("set_alpn_protocols");
  } else {
    alpn_wire_ = std::make_shared<std::string>(std::move(wire));
    SSL_CTX_set_alpn_select_cb(native(), select_alpn, alpn_wire_.get());
  }
}

void SSLContext::set_ciphers(const std::string& ciphers) {
  if (SSL_CTX_set_cipher_list(native(), ciphers.c_str()) != 1) detail::throw_ssl_error("set_ciphers");
}

SSLContext create_default_context(Purpose purpose, const std::string& cafile) {
  SSLContext ctx(purpose == Purpose::server_auth ? Side::client : Side::server);
  if (purpose == Purpose::server_auth) {
    ctx.load_default_certs();
    if (!cafile.empty()) ctx.load_verify_locations(cafile);
  }
  return ctx;
}

}  // namespace asyncio::ssl

namespace asyncio::detail {

std::exception_ptr ssl_error(const std::string& what, ssl_st* ssl) {
  unsigned long first = ERR_get_error();
  while (ERR_get_error() != 0) {
  }
  int reason = first ? ERR_GET_REASON(first) : SSL_R_UNEXPECTED_EOF_WHILE_READING;
  if (ssl && reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    long code = SSL_get_verify_result(ssl);
    std::string message = X509_verify_cert_error_string(code);
    return std::make_exception_ptr(ssl::SSLCertVerificationError(
        reason, code, message, what + ": certificate verify failed: " + message));
  }
  char text[256];
  if (first)
    ERR_error_string_n(first, text, sizeof text);
  else
    std::snprintf(text, sizeof text, "EOF in violation of protocol");
  return std::make_exception_ptr(ssl::SSLError(reason, what + ": " + text));
}

void throw_ssl_error(const std::string& what) { std::rethrow_exception(ssl_error(what, nullptr)); }

}  // namespace asyncio::detail
