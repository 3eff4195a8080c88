// Test support: madvise() from a native thread. With EVENT_REMOVE enabled on
// a registered range, MADV_DONTNEED/MADV_REMOVE sleep in the kernel until the
// monitor reads the REMOVE event (the window of the mmap-changing test), so
// it must not run on the JS thread, nor on the libuv threadpool.
//
// The same lifetime rules as the touch threads (touch_threads.cc): detached,
// never joined (it may stay blocked until the uffd is closed), reports through
// a TSFN guarded by a flag the environment's cleanup hook clears, and pins
// the library's regions in the range so that an unmap waits for it instead
// of letting the advice land on whatever is mapped there next.
#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "../args.h"
#include "../memory/region_table.h"
#include "madvise_thread.h"

namespace uffd {
namespace {

struct MadviseJob {
  uintptr_t address;
  size_t length;
  int advice;
  pid_t tid = 0;  // set by the thread before anything else, under mutex
  int error = 0;
  std::mutex mutex;
  std::condition_variable started;
  bool environmentGone = false;
  Napi::ThreadSafeFunction tsfn;
  void* hookArg = nullptr;
  Napi::Promise::Deferred deferred;
  RegionPins pins;
  explicit MadviseJob(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

void EnvironmentGone(void* arg) {
  auto* holder = static_cast<std::shared_ptr<MadviseJob>*>(arg);
  {
    std::lock_guard<std::mutex> lock((*holder)->mutex);
    (*holder)->environmentGone = true;
  }
  delete holder;
}

void Run(std::shared_ptr<MadviseJob> job) {
  {
    std::lock_guard<std::mutex> lock(job->mutex);
    job->tid = static_cast<pid_t>(syscall(SYS_gettid));
  }
  job->started.notify_all();
  int rc = madvise(reinterpret_cast<void*>(job->address), job->length, job->advice);
  job->error = rc == 0 ? 0 : errno;
  UnpinRegions(job->pins);
  std::lock_guard<std::mutex> lock(job->mutex);
  if (job->environmentGone) return;
  job->tsfn.NonBlockingCall([job](Napi::Env env, Napi::Function) {
    { std::lock_guard<std::mutex> released(job->mutex); }
    napi_remove_env_cleanup_hook(env, EnvironmentGone, job->hookArg);
    delete static_cast<std::shared_ptr<MadviseJob>*>(job->hookArg);
    try {
      job->deferred.Resolve(Napi::Number::New(env, job->error));
    } catch (const Napi::Error&) {
      // The environment is shutting down; nobody is waiting any more.
    }
  });
  job->tsfn.Release();
}

// madviseThread(address, length, advice, ref) -> [tid, Promise<errno>]
Napi::Value MadviseThread(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 4);
  auto job = std::make_shared<MadviseJob>(info.Env());
  job->address = UintArg(info, 0);
  job->length = UintArg(info, 1);
  job->advice = static_cast<int>(IntArg(info, 2));
  job->tsfn = Napi::ThreadSafeFunction::New(info.Env(), Napi::Function::New(info.Env(), [](const Napi::CallbackInfo&) {}),
                                            "userfaultfd:madvise", 0, 1);
  if (!info[3].ToBoolean()) job->tsfn.Unref(info.Env());
  // After the TSFN, so it runs before the runtime finalizes it.
  job->hookArg = new std::shared_ptr<MadviseJob>(job);
  napi_add_env_cleanup_hook(info.Env(), EnvironmentGone, job->hookArg);
  job->pins = PinRegions(job->address, job->length);
  std::thread(Run, job).detach();
  // The caller needs the thread id to watch it (e.g. until it sleeps in the
  // kernel); the thread sets it first thing.
  pid_t tid;
  {
    std::unique_lock<std::mutex> lock(job->mutex);
    job->started.wait(lock, [&] { return job->tid != 0; });
    tid = job->tid;
  }
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, Napi::Number::New(info.Env(), tid));
  out.Set(1u, job->deferred.Promise());
  return out;
}

}  // namespace

void InitMadviseThread(Napi::Env env, Napi::Object exports) {
  exports.Set("madviseThread", Napi::Function::New(env, MadviseThread, "madviseThread"));
}

}  // namespace uffd
