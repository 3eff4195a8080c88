#include "loop_poll.h"

#include "../errors.h"

namespace uffd {

LoopPoll::LoopPoll(Napi::Env env, int fd, Napi::Function onReadable, std::function<void(int)> onError)
    : env_(env), onReadable_(Napi::Persistent(onReadable)), onError_(std::move(onError)) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    throw Napi::Error::New(env, "userfaultfd: no event loop");
  }
  int rc = uv_poll_init(loop, &handle_, fd);
  if (rc != 0) ThrowErrno(env, -rc, "uv_poll_init");
  handle_.data = this;
  // The poll never holds the loop open by itself: the reader's TSFN is
  // referenced exactly when a consumer waits (lib/faults/fault-dispatcher.ts).
  uv_unref(reinterpret_cast<uv_handle_t*>(&handle_));
  napi_value name;
  napi_create_string_utf8(env, "userfaultfd:poll", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, nullptr, name, &context_);
}

void LoopPoll::SetActive(bool active) {
  active_ = active;
  Apply();
}

void LoopPoll::SetSuspended(bool suspended) {
  suspended_ = suspended;
  Apply();
}

void LoopPoll::Apply() {
  bool watch = active_ && !suspended_ && !closing_;
  if (watch == watching_) return;
  watching_ = watch;
  if (watch) {
    uv_poll_start(&handle_, UV_READABLE, OnPoll);
  } else {
    uv_poll_stop(&handle_);
  }
}

void LoopPoll::Close(std::function<void()> closed) {
  if (closing_) return;
  closing_ = true;
  watching_ = false;
  closed_ = std::move(closed);
  uv_poll_stop(&handle_);
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_), OnClosed);
}

void LoopPoll::OnClosed(uv_handle_t* handle) {
  auto* self = static_cast<LoopPoll*>(handle->data);
  if (self->context_ != nullptr) napi_async_destroy(self->env_, self->context_);
  self->context_ = nullptr;
  self->onReadable_.Reset();
  auto closed = std::move(self->closed_);
  if (closed) closed();  // may delete self
}

void LoopPoll::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<LoopPoll*>(handle->data);
  if (self->closing_) return;
  if (status < 0) {
    // The fd failed (EBADF...): stop, or level-triggered polling would spin;
    // onReadable() sees the error through the reader's status.
    self->onError_(-status);
    self->SetActive(false);
  }
  // Raw C API, as CallOnReadable: a JavaScript exception becomes an uncaught
  // exception of the process, never a C++ exception through libuv.
  napi_env env = self->env_;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn = self->onReadable_.Value();
  napi_value recv;  // napi_make_callback needs an object receiver
  napi_get_global(env, &recv);
  napi_value result;
  if (napi_make_callback(env, self->context_, recv, fn, 0, nullptr, &result) == napi_pending_exception) {
    napi_value error;
    if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
  }
  napi_close_handle_scope(env, scope);
}

}  // namespace uffd
