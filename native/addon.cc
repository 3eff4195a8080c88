// Module entry: sets up the per-environment state and collects the exports
// of each concept (one folder each: uffd/, ioctls/, memory/, faults/,
// testing/). The whole surface is declared for TypeScript in lib/native.ts.
#include <napi.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "addon_state.h"
#include "faults/fault_reader.h"
#include "ioctls/range_ioctls.h"
#include "memory/guest_memfd.h"
#include "memory/memory_syscalls.h"
#include "memory/pagemap_scan.h"
#include "memory/region_table.h"
#include "pager/pager_core.h"
#include "testing/stress_pages.h"
#include "testing/stress_threads.h"
#include "testing/thread_id.h"
#include "testing/fork_child.h"
#include "testing/longterm_pin.h"
#include "testing/touch_threads.h"
#include "testing/madvise_thread.h"
#include "testing/sigbus_touch.h"
#include "uffd/uffd_handle.h"
#include "net/fd_poll.h"
#include "net/unix_socket.h"

namespace uffd {

AddonState& StateOf(Napi::Env env) { return *env.GetInstanceData<AddonState>(); }

namespace {

void CleanupEnvironment(void* arg) {
  auto* state = static_cast<AddonState*>(arg);
  ReleaseEnvironmentViews(state);
  for (int fd : state->memoryFds) close(fd);
  state->memoryFds.clear();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* state = new AddonState();
  state->jsThreadId = static_cast<pid_t>(syscall(SYS_gettid));
  env.SetInstanceData(state);  // deleted by the runtime after the cleanup hooks
  state->mailbox = Napi::ThreadSafeFunction::New(
      env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "userfaultfd:views", 0, 1,
      [](Napi::Env) {});
  state->mailbox.Unref(env);
  {
    RegionTable& table = RegionTable::Instance();
    std::lock_guard<std::mutex> lock(table.mutex);
    table.liveEnvironments.push_back(state);
  }
  // Added after the mailbox TSFN so that it runs before the runtime
  // finalizes it (cleanup hooks run last-in, first-out).
  napi_add_env_cleanup_hook(env, CleanupEnvironment, state);

  InitUffdHandle(env, exports);
  InitRangeIoctls(env, exports);
  InitMemorySyscalls(env, exports);
  InitRegionTable(env, exports);
  InitGuestMemfd(env, exports);
  InitPagemapScan(env, exports);
  InitFaultReader(env, exports);
  InitTouchThreads(env, exports);
  InitThreadId(env, exports);
  InitForkChild(env, exports);
  InitStressPages(env, exports);
  InitStressThreads(env, exports);
  InitUnixSocket(env, exports);
  InitFdPoll(env, exports);
  pager::InitPager(env, exports);
  InitLongtermPin(env, exports);
  InitMadviseThread(env, exports);
  InitSigbusTouch(env, exports);
  return exports;
}

}  // namespace
}  // namespace uffd

static Napi::Object InitUserfaultfd(Napi::Env env, Napi::Object exports) { return uffd::Init(env, exports); }

NODE_API_MODULE(userfaultfd, InitUserfaultfd)
