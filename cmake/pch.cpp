// SPDX-License-Identifier: MIT
// Empty: the target that owns a precompiled header needs one source file to compile it with.
