// threadId() -> the calling thread's kernel id (gettid), the id a pagefault
// event reports with UFFD_FEATURE_THREAD_ID. Lets a Worker say which thread
// it is.
#include <sys/syscall.h>
#include <unistd.h>

#include "thread_id.h"

namespace uffd {

void InitThreadId(Napi::Env env, Napi::Object exports) {
  exports.Set("threadId", Napi::Function::New(
                              env,
                              [](const Napi::CallbackInfo& info) -> Napi::Value {
                                return Napi::Number::New(info.Env(), static_cast<double>(syscall(SYS_gettid)));
                              },
                              "threadId"));
}

}  // namespace uffd
