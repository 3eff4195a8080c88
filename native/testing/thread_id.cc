// threadId() -> the calling thread's kernel id (gettid), the id a pagefault
// event reports with UFFD_FEATURE_THREAD_ID. Lets a Worker say which thread
// it is. pinThread(cpu) pins the calling thread to one CPU (benchmarks run
// the JS handler and the faulting threads on fixed CPUs, as the C reference).
#include <errno.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../args.h"
#include "../errors.h"
#include "thread_id.h"

namespace uffd {

void InitThreadId(Napi::Env env, Napi::Object exports) {
  exports.Set("threadId", Napi::Function::New(
                              env,
                              [](const Napi::CallbackInfo& info) -> Napi::Value {
                                return Napi::Number::New(info.Env(), static_cast<double>(syscall(SYS_gettid)));
                              },
                              "threadId"));
  exports.Set("pinThread", Napi::Function::New(
                               env,
                               [](const Napi::CallbackInfo& info) -> Napi::Value {
                                 CheckArgCount(info, 1);
                                 cpu_set_t set;
                                 CPU_ZERO(&set);
                                 CPU_SET(static_cast<int>(IntArg(info, 0)), &set);
                                 if (sched_setaffinity(0, sizeof set, &set) != 0) {
                                   ThrowErrno(info.Env(), errno, "sched_setaffinity");
                                 }
                                 return info.Env().Undefined();
                               },
                               "pinThread"));
}

}  // namespace uffd
