// SPDX-License-Identifier: MIT
// What the TLS tests share: a self-signed test certificate and the contexts built on it.
#pragma once

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "asyncio/asyncio.hpp"
#include "net_support.hpp"

namespace tls_test {

/// A self-signed certificate for "localhost" and 127.0.0.1, made once per test process.
struct Certificate {
  net_test::TempDir dir;
  std::string cert = dir.file("cert.pem");
  std::string key = dir.file("key.pem");
  Certificate() {
    std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
                      " -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1"
                      " -keyout " + key + " -out " + cert + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl could not make a test certificate");
  }
};

inline const Certificate& certificate() {
  static Certificate c;
  return c;
}

/// A server context with the test certificate.
inline asyncio::ssl::SSLContext server_context() {
  asyncio::ssl::SSLContext ctx(asyncio::ssl::Side::server);
  ctx.load_cert_chain(certificate().cert, certificate().key);
  return ctx;
}

/// A client context that trusts the test certificate (and the system's CAs).
inline asyncio::ssl::SSLContext trusting_client() {
  return asyncio::ssl::create_default_context(asyncio::ssl::Purpose::server_auth, certificate().cert);
}

}  // namespace tls_test
