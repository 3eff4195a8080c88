// Readiness of an fd on the environment's own event loop (uv_poll), so
// socket I/O never blocks the JS thread and needs no extra thread and no
// threadpool slot. JavaScript does the non-blocking system calls itself and
// waits here only on EAGAIN, as serialport's poller does.
//
// A watcher belongs to its environment: its handle is closed by pollStop()
// or, at teardown, by an async cleanup hook that finishes only once libuv
// has closed the handle (a Worker's loop must not be freed under it).
#include <uv.h>

#include "../addon_state.h"
#include "../args.h"
#include "../errors.h"
#include "fd_poll.h"

namespace uffd {

struct PollWatcher {
  uv_poll_t handle;
  napi_env env = nullptr;
  AddonState* state = nullptr;
  uint32_t id = 0;
  Napi::FunctionReference callback;
  Napi::AsyncContext* context = nullptr;
  napi_async_cleanup_hook_handle hook = nullptr;
  bool closing = false;
};

namespace {

constexpr int kReadable = 1;
constexpr int kWritable = 2;
constexpr int kDisconnect = 4;

int UvEvents(int events) {
  return ((events & kReadable) ? UV_READABLE : 0) | ((events & kWritable) ? UV_WRITABLE : 0) |
         ((events & kDisconnect) ? UV_DISCONNECT : 0);
}

void OnClosed(uv_handle_t* handle) {
  auto* w = static_cast<PollWatcher*>(handle->data);
  w->callback.Reset();
  delete w->context;
  napi_async_cleanup_hook_handle hook = w->hook;
  delete w;
  // Last: at teardown this tells the runtime the handle is gone.
  napi_remove_async_cleanup_hook(hook);
}

void Close(PollWatcher* w) {
  if (w->closing) return;
  w->closing = true;
  w->state->pollWatchers.erase(w->id);
  uv_poll_stop(&w->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->handle), OnClosed);
}

void AtTeardown(napi_async_cleanup_hook_handle, void* arg) { Close(static_cast<PollWatcher*>(arg)); }

void OnPoll(uv_poll_t* handle, int status, int events) {
  auto* w = static_cast<PollWatcher*>(handle->data);
  if (w->closing) return;
  Napi::Env env(w->env);
  Napi::HandleScope scope(env);
  int mask = ((events & UV_READABLE) ? kReadable : 0) | ((events & UV_WRITABLE) ? kWritable : 0) |
             ((events & UV_DISCONNECT) ? kDisconnect : 0);
  try {
    w->callback.MakeCallback(env.Global(), {Napi::Number::New(env, mask), Napi::Number::New(env, status < 0 ? -status : 0)},
                             *w->context);
  } catch (const Napi::Error& e) {
    // Nothing up the stack can catch it: report it as Node reports an
    // exception thrown by any other event callback.
    napi_fatal_exception(env, e.Value());
  }
}

PollWatcher* Find(const Napi::CallbackInfo& info) {
  auto& watchers = StateOf(info.Env()).pollWatchers;
  auto it = watchers.find(static_cast<uint32_t>(IntArg(info, 0)));
  return it == watchers.end() ? nullptr : it->second;
}

// pollStart(fd, events, callback(events, errno)) -> id. events: 1 readable,
// 2 writable, 4 disconnect. The watcher keeps the loop alive (see pollRef).
Napi::Value PollStart(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 3);
  Napi::Env env = info.Env();
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "native: no event loop");
  AddonState& state = StateOf(env);
  auto* w = new PollWatcher();
  w->env = env;
  w->state = &state;
  int rc = uv_poll_init(loop, &w->handle, FdArg(info, 0));
  if (rc < 0) {
    delete w;
    ThrowErrno(env, -rc, "uv_poll_init");
  }
  w->handle.data = w;
  w->callback = Napi::Persistent(info[2].As<Napi::Function>());
  w->context = new Napi::AsyncContext(env, "userfaultfd:fdpoll");
  w->id = ++state.lastPollWatcherId;
  state.pollWatchers[w->id] = w;
  napi_add_async_cleanup_hook(env, AtTeardown, w, &w->hook);
  int events = UvEvents(static_cast<int>(IntArg(info, 1)));
  if (events != 0) {
    rc = uv_poll_start(&w->handle, events, OnPoll);
    if (rc < 0) {
      Close(w);
      ThrowErrno(env, -rc, "uv_poll_start");
    }
  }
  return Napi::Number::New(env, w->id);
}

// pollUpdate(id, events): 0 stops watching without closing.
Napi::Value PollUpdate(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  PollWatcher* w = Find(info);
  if (w == nullptr) return info.Env().Undefined();
  int events = UvEvents(static_cast<int>(IntArg(info, 1)));
  int rc = events ? uv_poll_start(&w->handle, events, OnPoll) : uv_poll_stop(&w->handle);
  if (rc < 0) ThrowErrno(info.Env(), -rc, "uv_poll_start");
  return info.Env().Undefined();
}

// pollStop(id). Idempotent. The fd may be closed right after.
Napi::Value PollStop(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  if (PollWatcher* w = Find(info)) Close(w);
  return info.Env().Undefined();
}

// pollRef(id, ref): whether the watcher keeps the loop alive.
Napi::Value PollRef(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  if (PollWatcher* w = Find(info)) {
    auto* h = reinterpret_cast<uv_handle_t*>(&w->handle);
    if (info[1].ToBoolean()) {
      uv_ref(h);
    } else {
      uv_unref(h);
    }
  }
  return info.Env().Undefined();
}

}  // namespace

void InitFdPoll(Napi::Env env, Napi::Object exports) {
  exports.Set("pollStart", Napi::Function::New(env, PollStart, "pollStart"));
  exports.Set("pollUpdate", Napi::Function::New(env, PollUpdate, "pollUpdate"));
  exports.Set("pollStop", Napi::Function::New(env, PollStop, "pollStop"));
  exports.Set("pollRef", Napi::Function::New(env, PollRef, "pollRef"));
}

}  // namespace uffd
