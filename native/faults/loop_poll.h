// A uv_poll on the environment's own event loop for a userfaultfd: when the
// fd is readable, libuv wakes the JS thread directly and onReadable() runs
// there, which reads and resolves the faults in the same tick. This saves
// the hop reader thread -> ThreadSafeFunction -> JS thread (a second
// cross-CPU wake-up per fault). The reader thread stays as a watchdog for
// the times the JS thread cannot read (it is blocked in a fault of its own,
// or busy): see FaultReader::Watch().
#pragma once

#include <napi.h>
#include <uv.h>

#include <functional>

namespace uffd {

class LoopPoll {
 public:
  // onError(errno) runs before onReadable() when libuv reports an error.
  LoopPoll(Napi::Env env, int fd, Napi::Function onReadable, std::function<void(int)> onError);
  LoopPoll(const LoopPoll&) = delete;
  LoopPoll& operator=(const LoopPoll&) = delete;

  // Start or stop watching (the JS side stops when no consumer has room, so
  // a level-triggered poll does not spin).
  void SetActive(bool active);
  // Suspended (the reader is paused, or a filter takes the messages), the fd
  // is not watched whatever SetActive() asked.
  void SetSuspended(bool suspended);
  // Stops watching at once (epoll_ctl DEL: the fd may be closed next) and
  // closes the handle; `closed` runs on the loop thread when libuv is done
  // with it, and may delete this object.
  void Close(std::function<void()> closed);

 private:
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnClosed(uv_handle_t* handle);

  napi_env env_;
  uv_poll_t handle_;
  Napi::FunctionReference onReadable_;
  napi_async_context context_ = nullptr;
  std::function<void(int)> onError_;
  std::function<void()> closed_;
  void Apply();
  bool active_ = false;     // what the dispatcher asks
  bool suspended_ = false;  // what the reader's state forbids
  bool watching_ = false;   // what libuv is doing
  bool closing_ = false;
};

}  // namespace uffd
