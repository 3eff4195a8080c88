// The native boundary of the fault reader (fault_reader.cc): readerStart()
// and the calls lib/faults/fault-dispatcher.ts makes on a reader by id, the
// per-environment table of readers, and the cleanup hooks that stop them.
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "../addon_state.h"
#include "../args.h"
#include "../errors.h"
#include "fault_reader.h"
#include "loop_poll.h"

namespace uffd {


struct ReaderSlot {
  std::unique_ptr<FaultReader> reader;
  // Loop mode only: the uv_poll, and the async cleanup hook that closes it
  // at environment teardown (a Worker's loop must have no open handle left).
  std::unique_ptr<LoopPoll> poll;
  napi_async_cleanup_hook_handle hook = nullptr;
  bool closing = false;
};

namespace {

// Readers of this environment, by id; its cleanup hooks stop them.
std::map<uint32_t, ReaderSlot*>& ReadersOf(Napi::Env env) { return StateOf(env).readers; }

void CleanupReader(void* arg) {
  // Environment teardown: stop the thread before the runtime finalizes the
  // TSFN (this hook was added after the TSFN, so it runs first).
  auto* slot = static_cast<ReaderSlot*>(arg);
  slot->reader->Stop();
  // The userfaultfd is still open: the environment ended without 'exit'
  // (worker.terminate()), so lib/ never closed it and nothing else can. Close
  // it here, or the fd leaks and a thread blocked in one of its faults stays
  // blocked for ever. Closing wakes such threads (the range then reads as
  // unregistered). A normal close() removed this hook before closing.
  close(slot->reader->Fd());
  delete slot;
}

// Loop mode: closes the poll; once libuv is done with it the slot goes, and
// the async cleanup hook is removed (which, during teardown, tells Node this
// environment's cleanup may finish).
void ClosePoll(ReaderSlot* slot) {
  slot->closing = true;
  slot->poll->Close([slot] {
    napi_remove_async_cleanup_hook(slot->hook);
    delete slot;
  });
}

void AsyncCleanupReader(napi_async_cleanup_hook_handle, void* arg) {
  auto* slot = static_cast<ReaderSlot*>(arg);
  if (slot->closing) return;  // close() already closing the poll; its callback finishes
  // As CleanupReader: stop the watchdog, then close the uffd lib/ never
  // closed (worker.terminate()), which wakes threads blocked on it. The poll
  // stops watching (epoll_ctl DEL) before the fd goes.
  slot->reader->Stop();
  slot->poll->SetActive(false);
  close(slot->reader->Fd());
  ClosePoll(slot);
}

ReaderSlot* SlotArg(const Napi::CallbackInfo& info) {
  auto& readers = ReadersOf(info.Env());
  auto it = readers.find(static_cast<uint32_t>(IntArg(info, 0)));
  if (it == readers.end()) ThrowErrno(info.Env(), EBADF, "reader");
  return it->second;
}

FaultReader* ReaderArg(const Napi::CallbackInfo& info) { return SlotArg(info)->reader.get(); }

// Loop mode: the JS thread polls the fd only while the reader is neither
// paused nor lending its messages to a filter (then the thread reads them).
void SyncPoll(ReaderSlot* slot) {
  if (slot->poll) slot->poll->SetSuspended(slot->reader->Paused() || slot->reader->Filtered());
}

// readerStart(uffd, onReadable, loop[, onPoll]) -> id. onReadable: the
// thread queued messages (TSFN); onPoll (loop mode): the fd is readable.
Napi::Value ReaderStart(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  AddonState& state = StateOf(info.Env());
  bool loop = info.Length() >= 3 && info[2].ToBoolean();
  auto onReadable = info[1].As<Napi::Function>();
  auto* slot = new ReaderSlot{std::make_unique<FaultReader>(info.Env(), FdArg(info, 0), state.jsThreadId, onReadable, loop)};
  if (loop) {
    FaultReader* reader = slot->reader.get();
    try {
      auto onPoll = info.Length() >= 4 && info[3].IsFunction() ? info[3].As<Napi::Function>() : onReadable;
      slot->poll = std::make_unique<LoopPoll>(info.Env(), reader->Fd(), onPoll,
                                              [reader](int err) { reader->SetReadError(err); });
    } catch (...) {
      slot->reader->Stop();
      slot->reader->Release();
      delete slot;
      throw;
    }
    napi_add_async_cleanup_hook(info.Env(), AsyncCleanupReader, slot, &slot->hook);
  } else {
    napi_add_env_cleanup_hook(info.Env(), CleanupReader, slot);
  }
  uint32_t id = ++state.lastReaderId;
  state.readers[id] = slot;
  return Napi::Number::New(info.Env(), id);
}

// readerPoll(id, active): loop mode, start or stop watching the fd.
Napi::Value ReaderPoll(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  ReaderSlot* slot = SlotArg(info);
  if (slot->poll) slot->poll->SetActive(info[1].ToBoolean());
  SyncPoll(slot);
  return info.Env().Undefined();
}

// readerDrain(id, max) -> ArrayBuffer of n × 32-byte uffd_msg: what the
// thread queued, then (loop mode) what a non-blocking read() of the fd gives.
Napi::Value ReaderDrain(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  ReaderSlot* slot = SlotArg(info);
  FaultReader* reader = slot->reader.get();
  SyncPoll(slot);
  size_t max = UintArg(info, 1);
  if (max == 0 || max > 4096) max = 4096;
  uffd_msg msgs[256];
  std::vector<uffd_msg> all;
  size_t n;
  std::unique_lock<std::mutex> order(reader->OrderMutex(), std::defer_lock);
  if (slot->poll) order.lock();  // loop mode: see OrderMutex()
  while (all.size() < max && (n = reader->Drain(msgs, std::min<size_t>(256, max - all.size()))) > 0) {
    all.insert(all.end(), msgs, msgs + n);
  }
  if (slot->poll) {
    while (all.size() < max) {
      size_t want = std::min<size_t>(kBatch, max - all.size());
      n = reader->ReadNow(msgs, want);
      all.insert(all.end(), msgs, msgs + n);
      if (n < want) break;  // a short read: the fd is empty
    }
  }
  auto out = Napi::ArrayBuffer::New(info.Env(), all.size() * sizeof(uffd_msg));
  if (!all.empty()) memcpy(out.Data(), all.data(), all.size() * sizeof(uffd_msg));
  return out;
}

// readerDrainInto(id, buffer) -> n: as readerDrain, into the caller's
// ArrayBuffer (n × 32-byte uffd_msg, as many as fit): no allocation per batch
// on the loop-mode fast path.
Napi::Value ReaderDrainInto(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  ReaderSlot* slot = SlotArg(info);
  FaultReader* reader = slot->reader.get();
  SyncPoll(slot);
  uint8_t* data = nullptr;
  size_t bytes = 0;
  if (!BytesOf(info[1], &data, &bytes)) throw Napi::TypeError::New(info.Env(), "native: buffer must be an ArrayBuffer");
  auto* out = reinterpret_cast<uffd_msg*>(data);
  size_t max = bytes / sizeof(uffd_msg);
  std::unique_lock<std::mutex> order(reader->OrderMutex(), std::defer_lock);
  if (slot->poll) order.lock();  // loop mode: see OrderMutex()
  size_t total = reader->Drain(out, max);
  if (slot->poll) {
    while (total < max) {
      size_t want = std::min<size_t>(kBatch, max - total);
      size_t n = reader->ReadNow(out + total, want);
      total += n;
      if (n < want) break;  // a short read: the fd is empty
    }
  }
  return Napi::Number::New(info.Env(), static_cast<double>(total));
}

// readerStop(id): joins the thread. The uffd itself stays open.
Napi::Value ReaderStop(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  auto& readers = ReadersOf(info.Env());
  auto it = readers.find(static_cast<uint32_t>(IntArg(info, 0)));
  if (it == readers.end()) return info.Env().Undefined();
  ReaderSlot* slot = it->second;
  readers.erase(it);
  slot->reader->Stop();
  slot->reader->Release();
  if (slot->poll) {
    // Stops watching now (the caller closes the fd next); the slot goes
    // when libuv has closed the handle.
    ClosePoll(slot);
    return info.Env().Undefined();
  }
  napi_remove_env_cleanup_hook(info.Env(), CleanupReader, slot);
  delete slot;
  return info.Env().Undefined();
}

// readerRef(id, ref)
Napi::Value ReaderRef(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  FaultReader* reader = ReaderArg(info);
  if (info[1].ToBoolean()) {
    reader->Ref(info.Env());
  } else {
    reader->Unref(info.Env());
  }
  return info.Env().Undefined();
}

// readerSetPolicy(id, policy)
Napi::Value ReaderSetPolicy(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  ReaderArg(info)->SetPolicy(static_cast<JsThreadFaultPolicy>(IntArg(info, 1)));
  return info.Env().Undefined();
}

// readerPause(id, paused). Loop mode: the JS thread's poll stops too.
Napi::Value ReaderPause(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  ReaderSlot* slot = SlotArg(info);
  slot->reader->SetPaused(info[1].ToBoolean());
  SyncPoll(slot);
  return info.Env().Undefined();
}

// readerStatus(id) -> [resolvedByReader, readErrno, paused]
Napi::Value ReaderStatus(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  FaultReader* reader = ReaderArg(info);
  Napi::Array out = Napi::Array::New(info.Env(), 3);
  out.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(reader->ResolvedByReader())));
  out.Set(1u, Napi::Number::New(info.Env(), reader->ReadError()));
  out.Set(2u, Napi::Boolean::New(info.Env(), reader->Paused()));
  return out;
}

}  // namespace

FaultReader* FindReader(Napi::Env env, uint32_t id) {
  auto& readers = ReadersOf(env);
  auto it = readers.find(id);
  return it == readers.end() ? nullptr : it->second->reader.get();
}

void InitFaultReader(Napi::Env env, Napi::Object exports) {
  exports.Set("readerStart", Napi::Function::New(env, ReaderStart, "readerStart"));
  exports.Set("readerDrain", Napi::Function::New(env, ReaderDrain, "readerDrain"));
  exports.Set("readerDrainInto", Napi::Function::New(env, ReaderDrainInto, "readerDrainInto"));
  exports.Set("readerPoll", Napi::Function::New(env, ReaderPoll, "readerPoll"));
  exports.Set("readerStop", Napi::Function::New(env, ReaderStop, "readerStop"));
  exports.Set("readerRef", Napi::Function::New(env, ReaderRef, "readerRef"));
  exports.Set("readerSetPolicy", Napi::Function::New(env, ReaderSetPolicy, "readerSetPolicy"));
  exports.Set("readerStatus", Napi::Function::New(env, ReaderStatus, "readerStatus"));
  exports.Set("readerPause", Napi::Function::New(env, ReaderPause, "readerPause"));
}

}  // namespace uffd
