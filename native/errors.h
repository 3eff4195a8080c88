// Node-shaped errno errors: message "<syscall> <CODE>: <description>", with
// `code`, `errno` (negative, as in Node's own fs and os errors) and `syscall`.
// The TypeScript layer adds the address range involved.
#pragma once

#include <napi.h>

namespace uffd {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall);
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const char* syscall);

}  // namespace uffd
