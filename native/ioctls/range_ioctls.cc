// The ioctls that resolve or change a registered range. Each returns the
// kernel's own progress field so that lib/ioctls/ can decode it:
//   success          -> the field as a Number (bytes done; 0 where the ioctl
//                       has no field)
//   failure          -> [errno, field]. The field is signed (__s64): it holds
//                       -errno when nothing was done, or the bytes done before
//                       the kernel stopped (then errno is EAGAIN).
// Nothing here throws for an ioctl failure: EEXIST and EAGAIN are ordinary
// outcomes for a pager, and the TypeScript layer decides what is an error.
#include <errno.h>
#include <sys/ioctl.h>

#include <algorithm>

#include "../args.h"
#include "../uapi/userfaultfd_compat.h"
#include "range_ioctls.h"

namespace uffd {
namespace {

Napi::Value Outcome(Napi::Env env, int rc, int err, int64_t field) {
  if (rc == 0) return Napi::Number::New(env, static_cast<double>(field));
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, err));
  out.Set(1u, Napi::Number::New(env, static_cast<double>(field)));
  return out;
}

// copy(fd, dst, src, srcOffset, len, mode[, chunk]). `src` is a Buffer,
// TypedArray, DataView or ArrayBuffer (srcOffset..+len must lie inside it),
// or a Number that is a source address in this process (a mapping the
// library owns). With `chunk`, one UFFDIO_COPY per chunk in a native loop
// (bulk population without a JS call per chunk); it stops at the first chunk
// that is not complete and returns [errno, field, bytes done before it].
Napi::Value Copy(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 6);
  uffdio_copy copy{};
  copy.dst = UintArg(info, 1);
  uint64_t offset = UintArg(info, 3);
  copy.len = UintArg(info, 4);
  copy.mode = UintArg(info, 5);
  if (info[2].IsNumber()) {
    copy.src = UintArg(info, 2) + offset;
  } else {
    uint8_t* data = nullptr;
    size_t length = 0;
    if (!BytesOf(info[2], &data, &length)) {
      throw Napi::TypeError::New(info.Env(), "native: copy source must be bytes or an address");
    }
    if (offset > length || copy.len > length - offset) {
      throw Napi::RangeError::New(info.Env(), "native: copy source is shorter than the length");
    }
    copy.src = reinterpret_cast<uint64_t>(data + offset);
  }
  uint64_t chunk = info.Length() >= 7 ? UintArg(info, 6) : 0;
  if (chunk == 0 || chunk >= copy.len) {
    int rc = ioctl(FdArg(info, 0), UFFDIO_COPY, &copy);
    int err = errno;
    return Outcome(info.Env(), rc, err, copy.copy);
  }
  int fd = FdArg(info, 0);
  uint64_t total = copy.len;
  for (uint64_t done = 0; done < total; done += chunk) {
    uffdio_copy part{copy.dst + done, copy.src + done, std::min(chunk, total - done), copy.mode, 0};
    if (ioctl(fd, UFFDIO_COPY, &part) != 0) {
      int err = errno;
      Napi::Array out = Napi::Array::New(info.Env(), 3);
      out.Set(0u, Napi::Number::New(info.Env(), err));
      out.Set(1u, Napi::Number::New(info.Env(), static_cast<double>(part.copy)));
      out.Set(2u, Napi::Number::New(info.Env(), static_cast<double>(done)));
      return out;
    }
  }
  return Napi::Number::New(info.Env(), static_cast<double>(total));
}

// zeropage(fd, start, len, mode)
Napi::Value Zeropage(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 4);
  uffdio_zeropage zp{};
  zp.range = {UintArg(info, 1), UintArg(info, 2)};
  zp.mode = UintArg(info, 3);
  int rc = ioctl(FdArg(info, 0), UFFDIO_ZEROPAGE, &zp);
  int err = errno;
  return Outcome(info.Env(), rc, err, zp.zeropage);
}

// continue(fd, start, len, mode)
Napi::Value Continue(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 4);
  uffdio_continue cont{};
  cont.range = {UintArg(info, 1), UintArg(info, 2)};
  cont.mode = UintArg(info, 3);
  int rc = ioctl(FdArg(info, 0), UFFDIO_CONTINUE, &cont);
  int err = errno;
  return Outcome(info.Env(), rc, err, cont.mapped);
}

// writeprotect(fd, start, len, mode). No progress field.
Napi::Value Writeprotect(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 4);
  uffdio_writeprotect wp{};
  wp.range = {UintArg(info, 1), UintArg(info, 2)};
  wp.mode = UintArg(info, 3);
  int rc = ioctl(FdArg(info, 0), UFFDIO_WRITEPROTECT, &wp);
  int err = errno;
  return Outcome(info.Env(), rc, err, rc == 0 ? 0 : -err);
}

// wake(fd, start, len). No progress field.
Napi::Value Wake(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 3);
  uffdio_range range{UintArg(info, 1), UintArg(info, 2)};
  int rc = ioctl(FdArg(info, 0), UFFDIO_WAKE, &range);
  int err = errno;
  return Outcome(info.Env(), rc, err, rc == 0 ? 0 : -err);
}

// poison(fd, start, len, mode)
Napi::Value Poison(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 4);
  uffdio_poison poison{};
  poison.range = {UintArg(info, 1), UintArg(info, 2)};
  poison.mode = UintArg(info, 3);
  int rc = ioctl(FdArg(info, 0), UFFDIO_POISON, &poison);
  int err = errno;
  return Outcome(info.Env(), rc, err, poison.updated);
}

// move(fd, dst, src, len, mode)
Napi::Value Move(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 5);
  uffdio_move mv{};
  mv.dst = UintArg(info, 1);
  mv.src = UintArg(info, 2);
  mv.len = UintArg(info, 3);
  mv.mode = UintArg(info, 4);
  int rc = ioctl(FdArg(info, 0), UFFDIO_MOVE, &mv);
  int err = errno;
  return Outcome(info.Env(), rc, err, mv.move);
}

}  // namespace

void InitRangeIoctls(Napi::Env env, Napi::Object exports) {
  exports.Set("copy", Napi::Function::New(env, Copy, "copy"));
  exports.Set("zeropage", Napi::Function::New(env, Zeropage, "zeropage"));
  exports.Set("continue", Napi::Function::New(env, Continue, "continue"));
  exports.Set("writeprotect", Napi::Function::New(env, Writeprotect, "writeprotect"));
  exports.Set("wake", Napi::Function::New(env, Wake, "wake"));
  exports.Set("poison", Napi::Function::New(env, Poison, "poison"));
  exports.Set("move", Napi::Function::New(env, Move, "move"));
}

}  // namespace uffd
