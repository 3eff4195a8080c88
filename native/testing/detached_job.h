// The lifetime guard shared by the jobs of detached test-support threads
// (touch_threads.cc, madvise_thread.cc, sigbus_touch.cc, fork_child.cc).
//
// Such a thread may stay blocked for ever (in a fault nobody resolves, or
// waiting for a child that is), so it is detached, never joined. It reports
// through a TSFN guarded by `environmentGone`, which the environment's
// cleanup hook sets under `mutex`: from then on the thread never calls into
// the environment. The hook's argument is a heap-held shared_ptr to the job,
// freed by whichever of the hook and the settle callback runs first.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <memory>
#include <mutex>

namespace uffd {

struct DetachedJob {
  std::mutex mutex;
  // Notified when the environment goes, so that a thread waiting on the JS
  // thread (for a resume, say) wakes and ends.
  std::condition_variable wake;
  bool environmentGone = false;
  Napi::ThreadSafeFunction tsfn;
  Napi::Promise::Deferred deferred;
  void* hookArg = nullptr;  // the cleanup hook's argument, removed once settled

  explicit DetachedJob(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  virtual ~DetachedJob() = default;
  // Runs in the cleanup hook, under `mutex`, once environmentGone is set.
  virtual void OnEnvironmentGone() {}
};

namespace detail {
inline void DetachedJobEnvironmentGone(void* arg) {
  auto* holder = static_cast<std::shared_ptr<DetachedJob>*>(arg);
  {
    std::lock_guard<std::mutex> lock((*holder)->mutex);
    (*holder)->environmentGone = true;
    (*holder)->OnEnvironmentGone();
  }
  (*holder)->wake.notify_all();
  delete holder;
}
}  // namespace detail

// Creates the job's TSFN; `callback` is what the thread may call besides
// settling (nothing by default).
inline void CreateJobTsfn(Napi::Env env, DetachedJob& job, const char* name, Napi::Function callback = Napi::Function()) {
  if (callback.IsEmpty()) callback = Napi::Function::New(env, [](const Napi::CallbackInfo&) {});
  job.tsfn = Napi::ThreadSafeFunction::New(env, callback, name, 0, 1);
}

// Registers the cleanup hook. After the TSFN is created, so that the hook
// runs before the runtime finalizes it.
inline void GuardJob(Napi::Env env, const std::shared_ptr<DetachedJob>& job) {
  job->hookArg = new std::shared_ptr<DetachedJob>(job);
  napi_add_env_cleanup_hook(env, detail::DetachedJobEnvironmentGone, job->hookArg);
}

// Called by the job's thread once, with job->mutex held, after it wrote its
// results: unless the environment is gone, posts settle(env) to the JS
// thread, then releases the TSFN.
template <typename Settle>
void SettleJob(const std::shared_ptr<DetachedJob>& job, Settle settle) {
  if (job->environmentGone) return;
  job->tsfn.NonBlockingCall([job, settle](Napi::Env env, Napi::Function) {
    if (env == nullptr) return;
    {
      // Waits until the thread has released the TSFN: once the hook is
      // removed, nothing would stop a teardown from finalizing it under
      // Release(). If the hook ran already, it freed its holder.
      std::lock_guard<std::mutex> released(job->mutex);
      if (job->environmentGone) return;
    }
    napi_remove_env_cleanup_hook(env, detail::DetachedJobEnvironmentGone, job->hookArg);
    delete static_cast<std::shared_ptr<DetachedJob>*>(job->hookArg);
    try {
      settle(env);
    } catch (const Napi::Error&) {
      // The environment is shutting down; nobody is waiting any more.
    }
  });
  job->tsfn.Release();
}

}  // namespace uffd
