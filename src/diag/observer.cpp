// SPDX-License-Identifier: MIT
// Plugs the diagnostics into every loop. The loop (core) calls them only through the
// detail::LoopObserver installed here, never by name, so the layers below stay free of them.
//
// The installation is a static initializer. In a static link the linker keeps this object only
// if something refers to it: the library's CMake target adds
// `-Wl,--undefined=asyncio_diagnostics_installed` to the links of its consumers, so that
// ASYNCIO_TRACE, ASYNCIO_WATCHDOG and debug mode's slow-step report work in every program,
// including one that never names a diagnostic.
#include "asyncio/loop.hpp"
#include "diag/introspect.hpp"

namespace asyncio::detail {
namespace {

constexpr LoopObserver kDiagnostics{&Introspect::from_env, &Introspect::run_ready_items};

bool install_diagnostics() noexcept {
  set_loop_observer(&kDiagnostics);
  return true;
}

}  // namespace
}  // namespace asyncio::detail

/// Referred to by the link option above; true once the diagnostics are installed.
extern "C" __attribute__((visibility("default"))) const bool asyncio_diagnostics_installed = asyncio::detail::install_diagnostics();
