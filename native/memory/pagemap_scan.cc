// pagemapScan(pagemapFd, start, end, flags, inverted, mask, anyof, returnMask,
//             maxPages, vec) -> [regions, walkEnd]
// One PAGEMAP_SCAN ioctl (fs/proc/task_mmu.c, 6.7+) on an open
// /proc/<pid>/pagemap: the page regions of [start, end) whose categories
// match, written into `vec` (an ArrayBuffer of 24-byte page_region records,
// owned by lib/, which decodes them); with PM_SCAN_WP_MATCHING the matching
// pages are write-protected again in the same walk (WP_ASYNC dirty tracking).
#include <errno.h>
#include <sys/ioctl.h>

#include "../args.h"
#include "../errors.h"
#include "../uapi/userfaultfd_compat.h"
#include "pagemap_scan.h"

namespace uffd {
namespace {

Napi::Value PagemapScan(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 10);
  uint8_t* vec = nullptr;
  size_t vecBytes = 0;
  if (!BytesOf(info[9], &vec, &vecBytes)) throw Napi::TypeError::New(info.Env(), "native: vec must be an ArrayBuffer or a Uint8Array");
  pm_scan_arg arg{};
  arg.size = sizeof arg;
  arg.flags = UintArg(info, 3);
  arg.start = UintArg(info, 1);
  arg.end = UintArg(info, 2);
  arg.vec = reinterpret_cast<uint64_t>(vec);
  arg.vec_len = vecBytes / sizeof(page_region);
  arg.max_pages = UintArg(info, 8);
  arg.category_inverted = UintArg(info, 4);
  arg.category_mask = UintArg(info, 5);
  arg.category_anyof_mask = UintArg(info, 6);
  arg.return_mask = UintArg(info, 7);
  int rc = ioctl(FdArg(info, 0), PAGEMAP_SCAN, &arg);
  if (rc < 0) ThrowErrno(info.Env(), errno, "ioctl(PAGEMAP_SCAN)");
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, Napi::Number::New(info.Env(), rc));
  out.Set(1u, Napi::Number::New(info.Env(), static_cast<double>(arg.walk_end)));
  return out;
}

}  // namespace

void InitPagemapScan(Napi::Env env, Napi::Object exports) {
  exports.Set("pagemapScan", Napi::Function::New(env, PagemapScan, "pagemapScan"));
}

}  // namespace uffd
