// Test support: a real long-term page pin without CONFIG_GUP_TEST. The
// kernel's selftests pin through /sys/kernel/debug/gup_test; io_uring fixed
// buffers (IORING_REGISTER_BUFFERS) take the same kind of pin
// (pin_user_pages with FOLL_LONGTERM), available on any kernel with io_uring.
// Unlike gup_test's read-only pin it is a writable one (FOLL_WRITE): pinning
// a page breaks CoW and, on a userfaultfd-write-protected page, raises a WP
// fault first.
//
// Raw io_uring_setup/io_uring_register, no liburing: the ring is never used
// for I/O, it only holds the pin, and the same code runs in the forked child.
#include "longterm_pin.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <mutex>

#include "../args.h"
#include "../errors.h"

namespace uffd {

namespace {
constexpr size_t kMaxBufferBytes = size_t{1} << 30;  // io_uring's per-buffer limit
constexpr size_t kMaxBuffers = kMaxPinBytes / kMaxBufferBytes;
}  // namespace

int LongtermPinRange(uintptr_t address, size_t length, int* failedCall) {
  if (length == 0 || length > kMaxPinBytes) {
    *failedCall = kPinRegister;
    return -EINVAL;
  }
  struct io_uring_params params;
  memset(&params, 0, sizeof params);
  // The fd is close-on-exec already; the child closes it at exit.
  long ring = syscall(SYS_io_uring_setup, 1u, &params);
  if (ring < 0) {
    *failedCall = kPinSetup;
    return -errno;
  }
  struct iovec iov[kMaxBuffers];
  unsigned count = 0;
  for (size_t done = 0; done < length; done += kMaxBufferBytes) {
    const size_t left = length - done;
    iov[count].iov_base = reinterpret_cast<void*>(address + done);
    iov[count].iov_len = left < kMaxBufferBytes ? left : kMaxBufferBytes;
    count++;
  }
  if (syscall(SYS_io_uring_register, static_cast<unsigned>(ring), IORING_REGISTER_BUFFERS, iov, count) < 0) {
    const int err = errno;
    close(static_cast<int>(ring));
    *failedCall = kPinRegister;
    return -err;
  }
  return static_cast<int>(ring);
}

int LongtermUnpin(int ringFd) {
  // Closing alone would unpin later, from the ring's exit work; unregistering
  // first makes the release synchronous.
  int result = 0;
  if (syscall(SYS_io_uring_register, static_cast<unsigned>(ringFd), IORING_UNREGISTER_BUFFERS, nullptr, 0u) < 0) {
    result = -errno;
  }
  close(ringFd);
  return result;
}

namespace {

// One pin of the parent: released by release() or, if the environment ends
// first, by its cleanup hook.
struct Pin {
  std::mutex mutex;
  int fd = -1;
  void* hookArg = nullptr;
  napi_env env = nullptr;
};

int ReleasePin(Pin& pin) {
  std::lock_guard<std::mutex> lock(pin.mutex);
  if (pin.fd < 0) return 1;  // already released
  const int result = LongtermUnpin(pin.fd);
  pin.fd = -1;
  return result;
}

void EnvironmentGone(void* arg) {
  auto* holder = static_cast<std::shared_ptr<Pin>*>(arg);
  ReleasePin(**holder);
  delete holder;
}

// longtermPin(address, length) -> [fd, release: () => boolean]
Napi::Value LongtermPin(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  Napi::Env env = info.Env();
  const uintptr_t address = UintArg(info, 0);
  const size_t length = UintArg(info, 1);
  int failedCall = 0;
  const int fd = LongtermPinRange(address, length, &failedCall);
  if (fd < 0) ThrowErrno(env, -fd, failedCall == kPinSetup ? "io_uring_setup" : "io_uring_register");

  auto pin = std::make_shared<Pin>();
  pin->fd = fd;
  pin->env = env;
  pin->hookArg = new std::shared_ptr<Pin>(pin);
  napi_add_env_cleanup_hook(env, EnvironmentGone, pin->hookArg);

  // release() -> true if this call released the pin, false if it was released already.
  auto release = Napi::Function::New(env, [pin](const Napi::CallbackInfo& ri) -> Napi::Value {
    const int result = ReleasePin(*pin);
    if (result == 1) return Napi::Boolean::New(ri.Env(), false);
    if (pin->hookArg) {
      napi_remove_env_cleanup_hook(pin->env, EnvironmentGone, pin->hookArg);
      delete static_cast<std::shared_ptr<Pin>*>(pin->hookArg);
      pin->hookArg = nullptr;
    }
    if (result < 0) ThrowErrno(ri.Env(), -result, "io_uring_register");
    return Napi::Boolean::New(ri.Env(), true);
  }, "release");

  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, fd));
  out.Set(1u, release);
  return out;
}

}  // namespace

void InitLongtermPin(Napi::Env env, Napi::Object exports) {
  exports.Set("longtermPin", Napi::Function::New(env, LongtermPin, "longtermPin"));
}

}  // namespace uffd
