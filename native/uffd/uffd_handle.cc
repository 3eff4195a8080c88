// Opening a userfaultfd, the UFFDIO_API handshake and range registration.
// Each function is one system call; the fallback between the device and the
// syscall, feature probing and validation live in lib/uffd/.
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../addon_state.h"
#include "../args.h"
#include "../errors.h"
#include "../uapi/userfaultfd_compat.h"
#include "uffd_handle.h"

namespace uffd {
namespace {

// openViaDevice(flags) -> fd. /dev/userfaultfd + USERFAULTFD_IOC_NEW (5.11+);
// access is governed by the device's file mode, not by
// vm.unprivileged_userfaultfd.
Napi::Value OpenViaDevice(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  int flags = static_cast<int>(IntArg(info, 0));
  int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
  if (dev < 0) ThrowErrno(info.Env(), errno, "open");
  int fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
  int err = errno;
  close(dev);
  if (fd < 0) ThrowErrno(info.Env(), err, "ioctl(USERFAULTFD_IOC_NEW)");
  return Napi::Number::New(info.Env(), fd);
}

// openViaSyscall(flags) -> fd.
Napi::Value OpenViaSyscall(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  int flags = static_cast<int>(IntArg(info, 0));
  int fd = static_cast<int>(syscall(SYS_userfaultfd, flags));
  if (fd < 0) ThrowErrno(info.Env(), errno, "userfaultfd");
  return Napi::Number::New(info.Env(), fd);
}

// api(fd, apiVersion, features) -> [features, ioctls] as BigInts. The
// returned features are everything the kernel supports, not what was
// enabled (that is the `features` argument when the call succeeds).
Napi::Value Api(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 3);
  uffdio_api api{};
  api.api = UintArg(info, 1);
  api.features = UintArg(info, 2);
  if (ioctl(FdArg(info, 0), UFFDIO_API, &api) < 0) ThrowErrno(info.Env(), errno, "ioctl(UFFDIO_API)");
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, Napi::BigInt::New(info.Env(), static_cast<uint64_t>(api.features)));
  out.Set(1u, Napi::BigInt::New(info.Env(), static_cast<uint64_t>(api.ioctls)));
  return out;
}

// register(fd, start, len, mode) -> ioctls allowed on the range (BigInt).
Napi::Value Register(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 4);
  uffdio_register reg{};
  reg.range.start = UintArg(info, 1);
  reg.range.len = UintArg(info, 2);
  reg.mode = UintArg(info, 3);
  if (ioctl(FdArg(info, 0), UFFDIO_REGISTER, &reg) < 0) ThrowErrno(info.Env(), errno, "ioctl(UFFDIO_REGISTER)");
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reg.ioctls));
}

// unregister(fd, start, len).
Napi::Value Unregister(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 3);
  uffdio_range range{UintArg(info, 1), UintArg(info, 2)};
  if (ioctl(FdArg(info, 0), UFFDIO_UNREGISTER, &range) < 0) ThrowErrno(info.Env(), errno, "ioctl(UFFDIO_UNREGISTER)");
  return info.Env().Undefined();
}

// closeFd(fd). Used for every fd the library owns (uffd, memfd).
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  StateOf(info.Env()).memoryFds.erase(FdArg(info, 0));
  if (close(FdArg(info, 0)) < 0) ThrowErrno(info.Env(), errno, "close");
  return info.Env().Undefined();
}

}  // namespace

void InitUffdHandle(Napi::Env env, Napi::Object exports) {
  exports.Set("openViaDevice", Napi::Function::New(env, OpenViaDevice, "openViaDevice"));
  exports.Set("openViaSyscall", Napi::Function::New(env, OpenViaSyscall, "openViaSyscall"));
  exports.Set("api", Napi::Function::New(env, Api, "api"));
  exports.Set("register", Napi::Function::New(env, Register, "register"));
  exports.Set("unregister", Napi::Function::New(env, Unregister, "unregister"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
}

}  // namespace uffd
