// SPDX-License-Identifier: MIT
// asyncio/version.hpp: the version macros come from project(VERSION) and agree with the library.
#include "asyncio/version.hpp"

#include <gtest/gtest.h>

#include <string>

#include "asyncio/asyncio.hpp"

TEST(Version, TheStringIsMajorMinorPatch) {
  std::string expected = std::to_string(ASYNCIO_VERSION_MAJOR) + "." + std::to_string(ASYNCIO_VERSION_MINOR) + "." +
                         std::to_string(ASYNCIO_VERSION_PATCH);
  EXPECT_EQ(std::string(ASYNCIO_VERSION_STRING), expected);
}

TEST(Version, TheLibraryIsTheVersionOfItsHeaders) {
  EXPECT_STREQ(asyncio::version(), ASYNCIO_VERSION_STRING);
}

TEST(Version, TheUmbrellaHeaderSaysWhetherTlsIsBuiltIn) {
  // asyncio.hpp brings version.hpp, so a program can test ASYNCIO_HAS_TLS before using ssl.hpp.
  EXPECT_TRUE(ASYNCIO_HAS_TLS == 0 || ASYNCIO_HAS_TLS == 1);
#if ASYNCIO_HAS_TLS
  asyncio::ssl::SSLContext context(asyncio::ssl::Side::client);  // ssl.hpp came with asyncio.hpp
  EXPECT_EQ(context.side(), asyncio::ssl::Side::client);
#endif
}
