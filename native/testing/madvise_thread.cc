// Test support: madvise() from a native thread. With EVENT_REMOVE enabled on
// a registered range, MADV_DONTNEED/MADV_REMOVE sleep in the kernel until the
// monitor reads the REMOVE event (the window of the mmap-changing test), so
// it must not run on the JS thread, nor on the libuv threadpool.
//
// The same lifetime rules as the touch threads (detached_job.h): detached,
// never joined (it may stay blocked until the uffd is closed), reports through
// a TSFN guarded by a flag the environment's cleanup hook sets, and pins
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
#include "detached_job.h"
#include "madvise_thread.h"

namespace uffd {
namespace {

struct MadviseJob : DetachedJob {
  uintptr_t address;
  size_t length;
  int advice;
  pid_t tid = 0;  // set by the thread before anything else, under mutex
  int error = 0;
  std::condition_variable started;
  RegionPins pins;
  using DetachedJob::DetachedJob;
};

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
  SettleJob(job, [job](Napi::Env env) { job->deferred.Resolve(Napi::Number::New(env, job->error)); });
}

// madviseThread(address, length, advice, ref) -> [tid, Promise<errno>]
Napi::Value MadviseThread(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 4);
  auto job = std::make_shared<MadviseJob>(info.Env());
  job->address = UintArg(info, 0);
  job->length = UintArg(info, 1);
  job->advice = static_cast<int>(IntArg(info, 2));
  CreateJobTsfn(info.Env(), *job, "userfaultfd:madvise");
  if (!info[3].ToBoolean()) job->tsfn.Unref(info.Env());
  GuardJob(info.Env(), job);
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
