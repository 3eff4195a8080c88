// Thin wrappers over the memory system calls that take an address or an fd.
// lib/memory/ checks every range against the mapping it belongs to first.
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "../addon_state.h"
#include "../args.h"
#include "../errors.h"
#include "memory_syscalls.h"

namespace uffd {
namespace {

// memfdCreate(name, flags) -> fd. flags include MFD_HUGETLB | size << 26.
Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int fd = memfd_create(name.c_str(), static_cast<unsigned>(IntArg(info, 1)));
  if (fd < 0) ThrowErrno(info.Env(), errno, "memfd_create");
  StateOf(info.Env()).memoryFds.insert(fd);
  return Napi::Number::New(info.Env(), fd);
}

// ftruncate(fd, length)
Napi::Value Ftruncate(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  if (ftruncate(FdArg(info, 0), static_cast<off_t>(UintArg(info, 1))) < 0) ThrowErrno(info.Env(), errno, "ftruncate");
  return info.Env().Undefined();
}

// madvise(address, length, advice)
Napi::Value Madvise(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 3);
  if (madvise(reinterpret_cast<void*>(UintArg(info, 0)), UintArg(info, 1), static_cast<int>(IntArg(info, 2))) < 0) {
    ThrowErrno(info.Env(), errno, "madvise");
  }
  return info.Env().Undefined();
}

// mprotect(address, length, prot)
Napi::Value Mprotect(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 3);
  if (mprotect(reinterpret_cast<void*>(UintArg(info, 0)), UintArg(info, 1), static_cast<int>(IntArg(info, 2))) < 0) {
    ThrowErrno(info.Env(), errno, "mprotect");
  }
  return info.Env().Undefined();
}

// fallocate(fd, mode, offset, length)
Napi::Value Fallocate(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 4);
  if (fallocate(FdArg(info, 0), static_cast<int>(IntArg(info, 1)), static_cast<off_t>(UintArg(info, 2)),
                static_cast<off_t>(UintArg(info, 3))) < 0) {
    ThrowErrno(info.Env(), errno, "fallocate");
  }
  return info.Env().Undefined();
}

// hugetlbPageSize(fd) -> the page size of a hugetlbfs file, or 0 if the fd
// is not on hugetlbfs.
Napi::Value HugetlbPageSize(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  struct statfs st {};
  if (fstatfs(FdArg(info, 0), &st) < 0) ThrowErrno(info.Env(), errno, "fstatfs");
  double size = st.f_type == HUGETLBFS_MAGIC ? static_cast<double>(st.f_bsize) : 0;
  return Napi::Number::New(info.Env(), size);
}

// ownMemoryFd(fd): an fd opened in JavaScript (a hugetlbfs file) that the
// environment's teardown must close if JavaScript never does.
Napi::Value OwnMemoryFd(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  StateOf(info.Env()).memoryFds.insert(FdArg(info, 0));
  return info.Env().Undefined();
}

}  // namespace

void InitMemorySyscalls(Napi::Env env, Napi::Object exports) {
  exports.Set("ownMemoryFd", Napi::Function::New(env, OwnMemoryFd, "ownMemoryFd"));
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate, "memfdCreate"));
  exports.Set("ftruncate", Napi::Function::New(env, Ftruncate, "ftruncate"));
  exports.Set("madvise", Napi::Function::New(env, Madvise, "madvise"));
  exports.Set("mprotect", Napi::Function::New(env, Mprotect, "mprotect"));
  exports.Set("fallocate", Napi::Function::New(env, Fallocate, "fallocate"));
  exports.Set("hugetlbPageSize", Napi::Function::New(env, HugetlbPageSize, "hugetlbPageSize"));
}

}  // namespace uffd
