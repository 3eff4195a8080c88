// guestMemfdCreate(size, flags) -> fd: a KVM guest_memfd (6.8+), the memory
// backend KVM uses for guest RAM. Made through a throwaway VM, which the
// guest_memfd keeps alive. flags: GUEST_MEMFD_FLAG_MMAP (1) makes it
// mmap()able (6.18).
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdint>

#include "../addon_state.h"
#include "../args.h"
#include "../errors.h"
#include "guest_memfd.h"

namespace uffd {
namespace {

struct KvmCreateGuestMemfd {
  uint64_t size;
  uint64_t flags;
  uint64_t reserved[6];
};
constexpr unsigned long kKvmCreateVm = _IO(0xAE, 0x01);
constexpr unsigned long kKvmCreateGuestMemfd = _IOWR(0xAE, 0xd4, KvmCreateGuestMemfd);

Napi::Value GuestMemfdCreate(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  KvmCreateGuestMemfd request{UintArg(info, 0), UintArg(info, 1), {}};
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) ThrowErrno(info.Env(), errno, "open(/dev/kvm)");
  int vm = ioctl(kvm, kKvmCreateVm, 0);
  int err = errno;
  close(kvm);
  if (vm < 0) ThrowErrno(info.Env(), err, "ioctl(KVM_CREATE_VM)");
  int fd = ioctl(vm, kKvmCreateGuestMemfd, &request);
  err = errno;
  close(vm);
  if (fd < 0) ThrowErrno(info.Env(), err, "ioctl(KVM_CREATE_GUEST_MEMFD)");
  StateOf(info.Env()).memoryFds.insert(fd);
  return Napi::Number::New(info.Env(), fd);
}

}  // namespace

void InitGuestMemfd(Napi::Env env, Napi::Object exports) {
  exports.Set("guestMemfdCreate", Napi::Function::New(env, GuestMemfdCreate, "guestMemfdCreate"));
}

}  // namespace uffd
