#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace uffd {

// Which call of a long-term pin failed (for the error's `syscall`).
enum LongtermPinCall : int { kPinSetup = 1, kPinRegister = 2 };

// The largest range one pin covers: io_uring takes at most 1 GiB per buffer,
// and the buffers' iovecs live on the stack (the forked child may not allocate).
constexpr size_t kMaxPinBytes = size_t{64} << 30;

// Takes a long-term pin (FOLL_LONGTERM | FOLL_WRITE, as io_uring fixed buffers
// do) on [address, address + length). Returns the io_uring fd that holds it,
// or -errno with *failedCall set. Raw system calls only, no allocation: it is
// also run in the forked test child (fork_child.cc).
int LongtermPinRange(uintptr_t address, size_t length, int* failedCall);

// Drops the pin (IORING_UNREGISTER_BUFFERS unpins synchronously) and closes
// the ring. Returns 0 or -errno of the unregister. Async-signal-safe.
int LongtermUnpin(int ringFd);

void InitLongtermPin(Napi::Env env, Napi::Object exports);

}  // namespace uffd
