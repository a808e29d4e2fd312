// SPDX-License-Identifier: MIT
// Private to the library: a file (the inspection socket) that must not outlive the process, even
// when the process ends without destroying the object that owns it: at exit() and when SIGINT,
// SIGTERM or SIGHUP kills the process.
#pragma once

#include <string>

namespace asyncio::detail::os {

/// Removes `path` when the process exits (an atexit handler) or dies of SIGINT, SIGTERM or SIGHUP,
/// until forget_at_exit(). One path at a time; a later call replaces it. Returns false (and keeps
/// nothing) if the path is too long for the fixed buffer a signal handler can read.
///
/// Signals: a handler is installed only for a signal whose disposition is the default one
/// (terminate) at the time of the call; a program that handles or ignores a signal keeps its own
/// handler untouched. The handler unlinks the path, restores the default disposition and raises
/// the signal again, so the process still dies of that signal (same exit status, same core rules).
/// A handler the program installs later replaces this one, which is then simply never called.
/// A forked child does not remove its parent's socket: the path is tied to the process id.
bool remove_at_exit(const std::string& path) noexcept;
/// Stops removing the path given to remove_at_exit (the owner removed it itself).
void forget_at_exit() noexcept;

}  // namespace asyncio::detail::os
