// The fault loop: one std::thread per userfaultfd that reads its messages in
// batches and hands them to JavaScript through a ThreadSafeFunction.
//
// Why a thread and not a uv_poll on the JS thread: a fault raised by the JS
// thread itself (touching an unresolved page through a view, or passing one
// to a syscall) blocks that thread in the kernel, and nothing on it can run
// again. The reader sees the faulting thread id (UFFD_FEATURE_THREAD_ID) and
// resolves such faults itself, by the policy set in lib/faults/.
// Why not the libuv threadpool: a blocked read there starves fs and crypto.
//
// Loop mode (the default, lib/ option `reader: 'loop'`): the JS thread reads
// the fd itself through a uv_poll on its own loop (loop_poll.h), and the
// thread is a watchdog (WatchTick()): it reads, and resolves JS-thread
// faults, only when the fd stayed readable for a whole tick without the JS
// thread reading it; or everything, while a filter (the pager) is attached.
#pragma once

#include <linux/userfaultfd.h>
#include <napi.h>
#include <sys/types.h>

#include <atomic>
#include <vector>
#include <memory>
#include <mutex>
#include <thread>

#include "fault_filter.h"

namespace uffd {

// Messages per read() of a uffd, as the C reference handler reads.
inline constexpr size_t kBatch = 64;

// Calls onReadable() with the raw C API: during environment teardown a call
// into JavaScript fails, and that must not become a C++ exception on a libuv
// callback. A JavaScript exception stays pending, and Node reports it as
// uncaught.
void CallOnReadable(Napi::Env env, Napi::Function onReadable, std::nullptr_t* context, void* data);
using ReaderTsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, void, CallOnReadable>;

enum class JsThreadFaultPolicy : int { kZero = 0, kPoison = 1 };

// Marks a message in the delivered batch: the reader already resolved it.
constexpr uint8_t kResolvedByReader = 1;

class FaultReader {
 public:
  FaultReader(Napi::Env env, int uffd, pid_t jsThreadId, Napi::Function onReadable, bool watchdog = false);
  ~FaultReader();

  // Wakes and joins the thread. Idempotent; safe from a cleanup hook.
  void Stop();
  // Moves up to `max` queued messages into `out`; returns how many.
  size_t Drain(uffd_msg* out, size_t max);
  // Loop mode, on the JS thread: one non-blocking read() of up to `max`
  // (at most 64) messages; 0 when there is none, when paused, when a filter
  // is attached, or on error (ReadError()).
  size_t ReadNow(uffd_msg* out, size_t max);
  // Held by the thread from its read() until the batch is queued, and by the
  // JS thread around Drain() + ReadNow(): messages reach JS in the order the
  // kernel gave them. Without it the JS thread could read (and act on) a
  // fault the kernel raised after an event the watchdog had read but not
  // queued yet — e.g. a fault at an mremap()'s new address before the REMAP
  // event, which then looks unregistered and is never resolved.
  std::mutex& OrderMutex() { return orderMutex_; }
  void SetReadError(int err) { readError_.store(err); }
  bool Filtered() const { return filtered_.load(); }
  void SetPolicy(JsThreadFaultPolicy policy) { policy_.store(policy); }
  // Stops (or resumes) reading the uffd: its messages then stay in the
  // kernel, and the threads waiting on them (a fault, or an madvise/mremap/
  // fork waiting for its event to be read) stay blocked. When SetPaused(true)
  // returns, no read() is under way and none will start until resumed.
  // Except: if the JS thread stays blocked in a userfault while paused (it
  // touched registered memory), nothing else could ever resume reading, so
  // the reader resumes by itself and resolves that fault by the policy.
  void SetPaused(bool paused);
  bool Paused();
  void Ref(Napi::Env env) { tsfn_.Ref(env); }
  void Unref(Napi::Env env) { tsfn_.Unref(env); }
  uint64_t ResolvedByReader() const { return resolvedByReader_.load(); }
  int ReadError() const { return readError_.load(); }
  // Drops the TSFN on a normal close (not at environment teardown, where
  // the runtime finalizes it).
  void Release() { tsfn_.Release(); }
  // The userfaultfd this reader reads (owned by lib/, except at teardown).
  int Fd() const { return uffd_; }
  // Lends the message stream to a native filter (a pager) or takes it back
  // (nullptr). Returns false if another filter is attached. When this
  // returns, the reader thread no longer uses the previous filter.
  bool SetFilter(std::shared_ptr<FaultFilter> filter);
  pid_t JsThreadId() const { return jsThreadId_; }

 private:
  void Run();
  bool ReadBatch(bool* deferred);
  FaultFilter::Work BackgroundState();
  FaultFilter::Work RunBackground();
  bool WatchTick(bool* wasReadable, uint64_t* lastReads, bool* deferred);
  void Deliver(const uffd_msg* msgs, size_t n);
  void ResolveForJsThread(uffd_msg* msg);
  bool JsThreadInUserfault() const;

  int uffd_;
  int stopFd_;
  int controlFd_;  // wakes the poll() when paused_ changes
  pid_t jsThreadId_;
  std::atomic<JsThreadFaultPolicy> policy_{JsThreadFaultPolicy::kZero};
  std::atomic<uint64_t> resolvedByReader_{0};
  std::atomic<int> readError_{0};
  ReaderTsfn tsfn_;
  std::mutex mutex_;
  // A FIFO in a vector reserved up front (queue_[head_..]): the reader thread
  // must not allocate. glibc's fork() holds every malloc arena lock while
  // the kernel waits for its FORK event to be read; a reader blocked in
  // malloc() then never reads it and the fork()ing thread hangs for ever.
  std::vector<uffd_msg> queue_;
  size_t head_ = 0;
  bool signalled_ = false;  // a call into JS is pending; under mutex_
  std::thread thread_;
  bool stopped_ = false;
  std::mutex orderMutex_;  // see OrderMutex()
  std::mutex readMutex_;  // held around each read() of the uffd
  bool paused_ = false;   // under readMutex_
  // Held by the reader thread while a filter handles a batch.
  std::mutex filterMutex_;
  std::shared_ptr<FaultFilter> filter_;
  std::atomic<bool> filtered_{false};  // filter_ is set (read without filterMutex_)
  bool watchdog_ = false;
  std::atomic<uint64_t> jsReads_{0};  // ReadNow() calls: the JS thread is alive
};

void InitFaultReader(Napi::Env env, Napi::Object exports);
// The environment's reader with this id (readerStart), or nullptr.
FaultReader* FindReader(Napi::Env env, uint32_t id);

}  // namespace uffd
