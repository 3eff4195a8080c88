#include "fault_reader.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "../addon_state.h"
#include "../args.h"
#include "../errors.h"
#include "../memory/region_table.h"
#include "../uapi/userfaultfd_compat.h"
#include "loop_poll.h"

namespace uffd {

namespace {
constexpr size_t kBatch = 64;  // messages per read(), as the C reference handler
// Messages the queue holds without allocating (one per blocked thread, plus
// non-cooperative events): more only if thousands of threads fault at once.
constexpr size_t kQueueReserve = 1024;
constexpr size_t kPageSizes[] = {4096, 2u << 20, 1u << 30};
// Watchdog period. A fault the JS thread has not read within one to two
// ticks is read by the watchdog: a JS-thread fault waits that long, and a
// JS thread busy for longer than a tick gets its faults through the queue.
constexpr int kWatchdogTickMs = 4;
}  // namespace

void CallOnReadable(Napi::Env env, Napi::Function onReadable, std::nullptr_t*, void*) {
  if (env == nullptr || onReadable.IsEmpty()) return;
  napi_value undefined = nullptr;
  napi_value result = nullptr;
  napi_get_undefined(env, &undefined);
  napi_call_function(env, undefined, onReadable, 0, nullptr, &result);
}

FaultReader::FaultReader(Napi::Env env, int uffd, pid_t jsThreadId, Napi::Function onReadable, bool watchdog)
    : uffd_(uffd), stopFd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)), jsThreadId_(jsThreadId), watchdog_(watchdog) {
  if (stopFd_ < 0) ThrowErrno(env, errno, "eventfd");
  queue_.reserve(kQueueReserve);
  tsfn_ = ReaderTsfn::New(env, onReadable, "userfaultfd:reader", 0, 1);
  tsfn_.Unref(env);
  thread_ = std::thread([this] {
    started_.store(true);
    Run();
  });
  // Wait until the thread runs, before the uffd can get events: glibc's
  // fork() holds every malloc arena lock while the kernel waits for its
  // FORK event to be read, and a thread still in its start-up (which frees
  // its start state) would block on those locks and never read it: the
  // fork()ing thread hung. From here on the reader path does not allocate
  // (until the queue outgrows its first block).
  while (!started_.load()) std::this_thread::yield();
}

FaultReader::~FaultReader() { Stop(); }

void FaultReader::Stop() {
  if (stopped_) return;
  stopped_ = true;
  uint64_t one = 1;
  ssize_t ignored = write(stopFd_, &one, sizeof one);
  (void)ignored;
  if (thread_.joinable()) thread_.join();
  // Now, not when the reader is deleted: in loop mode that waits for libuv
  // to close the poll handle, and the fd would outlive close().
  if (stopFd_ >= 0) close(stopFd_);
  stopFd_ = -1;
  // Fork messages nobody took carry an fd each.
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = head_; i < queue_.size(); i++) {
    if (queue_[i].event == UFFD_EVENT_FORK) close(static_cast<int>(queue_[i].arg.fork.ufd));
  }
  queue_.clear();
  head_ = 0;
}

size_t FaultReader::Drain(uffd_msg* out, size_t max) {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = 0;
  while (n < max && head_ < queue_.size()) out[n++] = queue_[head_++];
  if (head_ == queue_.size()) {
    queue_.clear();  // keeps the capacity
    head_ = 0;
    signalled_ = false;
  }
  return n;
}

void FaultReader::Deliver(const uffd_msg* msgs, size_t n) {
  bool call = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (head_ > 0 && queue_.size() + n > queue_.capacity()) {
      // Reuse the drained front before growing.
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(head_));
      head_ = 0;
    }
    queue_.insert(queue_.end(), msgs, msgs + n);
    if (!signalled_) signalled_ = call = true;
  }
  // Never a blocking call: at environment teardown the TSFN answers
  // napi_closing, and the cleanup hook is about to stop this thread anyway.
  if (call) tsfn_.NonBlockingCall();
}

// The JS thread of the owning environment is blocked on this fault, so no
// JavaScript can resolve it. Resolve it here so the thread runs again.
void FaultReader::ResolveForJsThread(uffd_msg* msg) {
  uint64_t flags = msg->arg.pagefault.flags;
  uint64_t address = msg->arg.pagefault.address;
  size_t pageSize = 0;
  {
    // Never wait for the table: another environment's JS thread may hold it
    // while it munmap()s or mremap()s memory registered here with
    // EVENT_UNMAP/EVENT_REMAP, and the kernel holds that call until this
    // very thread reads the event. Without the table the size is probed.
    RegionTable& table = RegionTable::Instance();
    std::unique_lock<std::mutex> lock(table.mutex, std::try_to_lock);
    if (lock.owns_lock()) pageSize = table.PageSizeAt(address);
  }
  // Unknown memory: try each page size until the kernel accepts one.
  for (size_t candidate : kPageSizes) {
    size_t size = pageSize ? pageSize : candidate;
    uint64_t start = address & ~(static_cast<uint64_t>(size) - 1);
    // Counted before the ioctl that wakes the JS thread, so that thread reads
    // a count that already includes its own fault (undone on failure).
    resolvedByReader_++;
    int rc;
    if (policy_.load() == JsThreadFaultPolicy::kPoison) {
      uffdio_poison poison{{start, size}, 0, 0};
      rc = ioctl(uffd_, UFFDIO_POISON, &poison);
    } else if (flags & UFFD_PAGEFAULT_FLAG_WP) {
      uffdio_writeprotect wp{{start, size}, 0};
      rc = ioctl(uffd_, UFFDIO_WRITEPROTECT, &wp);
    } else if (flags & UFFD_PAGEFAULT_FLAG_MINOR) {
      uffdio_continue cont{{start, size}, 0, 0};
      rc = ioctl(uffd_, UFFDIO_CONTINUE, &cont);
    } else if (size == 4096) {
      uffdio_zeropage zp{{start, size}, 0, 0};
      rc = ioctl(uffd_, UFFDIO_ZEROPAGE, &zp);
    } else {
      // hugetlb has no ZEROPAGE: copy from untouched anonymous memory, which
      // reads as zeros without being populated.
      void* zeros = mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (zeros == MAP_FAILED) {
        resolvedByReader_--;
        break;
      }
      uffdio_copy copy{start, reinterpret_cast<uint64_t>(zeros), size, 0, 0};
      rc = ioctl(uffd_, UFFDIO_COPY, &copy);
      munmap(zeros, size);
    }
    if (rc == 0 || errno == EEXIST) {
      if (rc != 0) {
        uffdio_range range{start, size};
        ioctl(uffd_, UFFDIO_WAKE, &range);
      }
      msg->reserved1 = kResolvedByReader;
      return;
    }
    resolvedByReader_--;
    if (errno != EINVAL || pageSize) break;
  }
  // Could not resolve (a range this fd no longer covers): wake the thread so
  // it retries the access, which then either succeeds or faults again.
  uffdio_range range{address & ~4095ull, 4096};
  ioctl(uffd_, UFFDIO_WAKE, &range);
}

bool FaultReader::ReadBatch() {
  uffd_msg msgs[kBatch];
  ssize_t bytes = read(uffd_, msgs, sizeof msgs);
  if (bytes < 0) {
    if (errno == EAGAIN || errno == EINTR) return true;
    readError_ = errno;
    Deliver(nullptr, 0);
    return false;
  }
  size_t n = static_cast<size_t>(bytes) / sizeof(uffd_msg);
  for (size_t i = 0; i < n; i++) {
    msgs[i].reserved1 = 0;
    if (msgs[i].event == UFFD_EVENT_PAGEFAULT && jsThreadId_ != 0 &&
        static_cast<pid_t>(msgs[i].arg.pagefault.feat.ptid) == jsThreadId_) {
      ResolveForJsThread(&msgs[i]);
    }
  }
  Deliver(msgs, n);
  return true;
}

size_t FaultReader::ReadNow(uffd_msg* out, size_t max) {
  jsReads_.fetch_add(1, std::memory_order_relaxed);
  ssize_t bytes = read(uffd_, out, std::min(max, kBatch) * sizeof(uffd_msg));
  if (bytes < 0) {
    if (errno != EAGAIN && errno != EINTR) readError_ = errno;
    return 0;
  }
  size_t n = static_cast<size_t>(bytes) / sizeof(uffd_msg);
  for (size_t i = 0; i < n; i++) {
    out[i].reserved1 = 0;
    // The JS thread is running, so a fault of its own cannot be pending; a
    // stale one (woken by other means) is resolved as the watchdog would.
    if (out[i].event == UFFD_EVENT_PAGEFAULT && jsThreadId_ != 0 &&
        static_cast<pid_t>(out[i].arg.pagefault.feat.ptid) == jsThreadId_) {
      ResolveForJsThread(&out[i]);
    }
  }
  return n;
}

void FaultReader::Run() {
  if (watchdog_) {
    Watch();
    return;
  }
  pollfd fds[2] = {{uffd_, POLLIN, 0}, {stopFd_, POLLIN, 0}};
  for (;;) {
    int ready = poll(fds, 2, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      readError_ = errno;
      break;
    }
    if (fds[1].revents) break;
    if (fds[0].revents & (POLLERR | POLLNVAL)) {
      readError_ = EBADF;
      Deliver(nullptr, 0);
      break;
    }
    if (!ReadBatch()) break;
  }
}

// Loop mode. Never waits on the uffd itself: the kernel wakes every waiter
// of a uffd on each fault, and a second thread woken per fault costs as much
// as the hop it replaces. It looks at the fd once per tick instead.
void FaultReader::Watch() {
  pollfd stop = {stopFd_, POLLIN, 0};
  bool wasReadable = false;
  uint64_t lastReads = 0;
  for (;;) {
    int ready = poll(&stop, 1, kWatchdogTickMs);
    if (ready > 0) break;
    if (ready < 0 && errno != EINTR) {
      readError_ = errno;
      break;
    }
    pollfd fd = {uffd_, POLLIN, 0};
    if (poll(&fd, 1, 0) <= 0) {
      wasReadable = false;
      continue;
    }
    if (fd.revents & (POLLERR | POLLNVAL)) {
      readError_ = EBADF;
      Deliver(nullptr, 0);
      break;
    }
    uint64_t reads = jsReads_.load(std::memory_order_relaxed);
    if (!wasReadable || reads != lastReads) {
      // Readable now; the JS thread gets a whole tick to read it.
      wasReadable = true;
      lastReads = reads;
      continue;
    }
    // Readable for a whole tick and the JS thread did not read: it is
    // blocked (perhaps in a fault of its own) or busy. Read as thread mode.
    if (!ReadBatch()) break;
  }
}

// ---- the native boundary -------------------------------------------------

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

// readerStart(uffd, onReadable, loop) -> id
Napi::Value ReaderStart(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  AddonState& state = StateOf(info.Env());
  bool loop = info.Length() >= 3 && info[2].ToBoolean();
  auto onReadable = info[1].As<Napi::Function>();
  auto* slot = new ReaderSlot{std::make_unique<FaultReader>(info.Env(), FdArg(info, 0), state.jsThreadId, onReadable, loop)};
  if (loop) {
    FaultReader* reader = slot->reader.get();
    try {
      slot->poll = std::make_unique<LoopPoll>(info.Env(), reader->Fd(), onReadable,
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
  return info.Env().Undefined();
}

// readerDrain(id, max) -> ArrayBuffer of n × 32-byte uffd_msg: what the
// thread queued, then (loop mode) what a non-blocking read() of the fd gives.
Napi::Value ReaderDrain(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  ReaderSlot* slot = SlotArg(info);
  FaultReader* reader = slot->reader.get();
  size_t max = UintArg(info, 1);
  if (max == 0 || max > 4096) max = 4096;
  uffd_msg msgs[256];
  std::vector<uffd_msg> all;
  size_t n;
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

// readerStatus(id) -> [resolvedByReader, readErrno]
Napi::Value ReaderStatus(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  FaultReader* reader = ReaderArg(info);
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(reader->ResolvedByReader())));
  out.Set(1u, Napi::Number::New(info.Env(), reader->ReadError()));
  return out;
}

}  // namespace

void InitFaultReader(Napi::Env env, Napi::Object exports) {
  exports.Set("readerStart", Napi::Function::New(env, ReaderStart, "readerStart"));
  exports.Set("readerDrain", Napi::Function::New(env, ReaderDrain, "readerDrain"));
  exports.Set("readerPoll", Napi::Function::New(env, ReaderPoll, "readerPoll"));
  exports.Set("readerStop", Napi::Function::New(env, ReaderStop, "readerStop"));
  exports.Set("readerRef", Napi::Function::New(env, ReaderRef, "readerRef"));
  exports.Set("readerSetPolicy", Napi::Function::New(env, ReaderSetPolicy, "readerSetPolicy"));
  exports.Set("readerStatus", Napi::Function::New(env, ReaderStatus, "readerStatus"));
}

}  // namespace uffd
