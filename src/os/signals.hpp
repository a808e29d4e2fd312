// SPDX-License-Identifier: MIT
// Private to the library: routing a signal from its handler to a loop, behind calls the layers
// above can use without the platform's headers.
//
// A signal handler may do almost nothing safely; ours writes the signal's number as one byte to
// the descriptor of the loop that asked for it (a non-blocking pipe the loop watches), and the loop
// runs the application's callback later, on its own thread. This is CPython's set_wakeup_fd design.
#pragma once

namespace asyncio::detail::os {

/// How route_signal() can refuse.
enum class RouteError {
  none,
  invalid,       // not a signal number (Python: ValueError)
  uncatchable,   // SIGKILL, SIGSTOP (Python: RuntimeError "sig N cannot be caught")
  taken,         // routed to another descriptor (another loop)
  system,        // sigaction failed: errno says why
};

/// SIGINT, for the layers above that may not include <signal.h>.
int sigint() noexcept;

/// 1 + the largest signal number.
int signal_count() noexcept;

/// Installs the handler for `sig` that writes the signal's number to `wakeup_fd`, saving the
/// disposition it replaces (kept when `sig` is already routed to `wakeup_fd`).
RouteError route_signal(int sig, int wakeup_fd) noexcept;

/// Puts back the disposition route_signal() replaced. False if `sig` is not routed to `wakeup_fd`.
bool unroute_signal(int sig, int wakeup_fd) noexcept;

/// True if `sig`'s disposition is SIG_DFL (nobody installed a handler). The inspection socket's
/// clean-up handler (remove_at_exit.hpp) counts as a handler: with ASYNCIO_INSPECT on, Ctrl-C
/// removes the socket and ends the process, as without the library.
bool signal_is_default(int sig) noexcept;

/// True on the process's initial thread (where Python allows signal handlers).
bool on_main_thread() noexcept;

/// The default action of `sig` now: its disposition back to SIG_DFL and the signal raised, so a
/// process dies of it as it would have without us (the second Ctrl-C).
void raise_with_default_action(int sig) noexcept;

/// The name of a signal ("SIGINT"), or "signal N".
const char* signal_name(int sig) noexcept;

}  // namespace asyncio::detail::os
