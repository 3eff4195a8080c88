#include "fault_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
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
constexpr size_t kPageSizes[] = {4096, 2u << 20, 1u << 30};
// While paused, how often the reader checks whether the JS thread is blocked
// in a userfault, and how many checks in a row make it resume (a fault on
// another uffd, resolved by that one's reader, lasts far less).
constexpr int kPausedCheckMs = 20;
constexpr int kPausedStrikes = 2;
// Loop mode: the watchdog's period. A fault the JS thread has not read within
// one to two ticks is read by the watchdog: a JS-thread fault waits that
// long, and a JS thread busy for longer than a tick gets its faults through
// the queue.
constexpr int kWatchdogTickMs = 4;
// Messages the queue holds without allocating (one per blocked thread, plus
// non-cooperative events): more only if thousands of threads fault at once.
constexpr size_t kQueueReserve = 1024;
}  // namespace

void CallOnReadable(Napi::Env env, Napi::Function onReadable, std::nullptr_t*, void*) {
  if (env == nullptr || onReadable.IsEmpty()) return;
  napi_value undefined = nullptr;
  napi_value result = nullptr;
  napi_get_undefined(env, &undefined);
  napi_call_function(env, undefined, onReadable, 0, nullptr, &result);
}

FaultReader::FaultReader(Napi::Env env, int uffd, pid_t jsThreadId, Napi::Function onReadable, bool watchdog)
    : uffd_(uffd),
      stopFd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      controlFd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      jsThreadId_(jsThreadId),
      watchdog_(watchdog) {
  if (stopFd_ < 0 || controlFd_ < 0) {
    int err = errno;
    if (stopFd_ >= 0) close(stopFd_);
    if (controlFd_ >= 0) close(controlFd_);
    ThrowErrno(env, err, "eventfd");
  }
  queue_.reserve(kQueueReserve);
  tsfn_ = ReaderTsfn::New(env, onReadable, "userfaultfd:reader", 0, 1);
  tsfn_.Unref(env);
  thread_ = std::thread([this] { Run(); });
}

FaultReader::~FaultReader() { Stop(); }

bool FaultReader::Paused() {
  std::lock_guard<std::mutex> lock(readMutex_);
  return paused_;
}

// The kernel's wait channel of the JS thread. Without kallsyms it reads "0"
// and the check never fires (documented).
bool FaultReader::JsThreadInUserfault() const {
  if (jsThreadId_ == 0) return false;
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/wchan", static_cast<int>(jsThreadId_));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[64] = {0};
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  return n > 0 && strncmp(buf, "handle_userfault", 16) == 0;
}

void FaultReader::SetPaused(bool paused) {
  {
    // Taken while no read() is under way; the thread checks the flag under
    // the same mutex before each read().
    std::lock_guard<std::mutex> lock(readMutex_);
    paused_ = paused;
  }
  uint64_t one = 1;
  ssize_t ignored = write(controlFd_, &one, sizeof one);
  (void)ignored;
}

void FaultReader::Stop() {
  if (stopped_) return;
  stopped_ = true;
  uint64_t one = 1;
  ssize_t ignored = write(stopFd_, &one, sizeof one);
  (void)ignored;
  if (thread_.joinable()) thread_.join();
  // Now, not when the reader is deleted: in loop mode that waits for libuv
  // to close the poll handle, and the fds would outlive close().
  if (stopFd_ >= 0) close(stopFd_);
  if (controlFd_ >= 0) close(controlFd_);
  stopFd_ = controlFd_ = -1;
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

bool FaultReader::SetFilter(std::shared_ptr<FaultFilter> filter) {
  {
    std::lock_guard<std::mutex> lock(filterMutex_);
    if (filter && filter_) return false;
    filter_ = std::move(filter);
    filtered_.store(filter_ != nullptr);
  }
  // Loop mode: the thread switches between watching and reading everything.
  uint64_t one = 1;
  ssize_t ignored = write(controlFd_, &one, sizeof one);
  (void)ignored;
  return true;
}

// Reads one batch (unless paused), lets the filter take what it serves,
// resolves JS-thread faults, queues the rest. False on a fatal error.
bool FaultReader::ReadBatch(bool* deferred) {
  uffd_msg msgs[kBatch];
  std::shared_ptr<FaultFilter> filter;
  {
    std::lock_guard<std::mutex> lock(filterMutex_);
    filter = filter_;
  }
  // Only the watchdog races the JS thread's reads (with a filter attached
  // JS reads nothing itself): see OrderMutex().
  std::unique_lock<std::mutex> order(orderMutex_, std::defer_lock);
  if (watchdog_ && !filter) order.lock();
  if (filter) filter->BeginBatch();
  ssize_t bytes;
  {
    std::lock_guard<std::mutex> lock(readMutex_);
    bytes = paused_ ? -2 : read(uffd_, msgs, sizeof msgs);
  }
  int readErrno = errno;
  size_t n = bytes > 0 ? static_cast<size_t>(bytes) / sizeof(uffd_msg) : 0;
  if (n > 0) {
    // A native consumer (the pager) takes what it serves first; unless it
    // was detached meanwhile, and then JavaScript gets everything.
    std::lock_guard<std::mutex> lock(filterMutex_);
    if (filter_ && filter_ == filter) {
      n = filter_->Filter(uffd_, msgs, n);
      *deferred = filter_->RetryDeferred(uffd_);
    }
  }
  if (filter) filter->EndBatch();
  if (bytes == -2) return true;  // paused meanwhile
  if (bytes < 0) {
    if (readErrno == EAGAIN || readErrno == EINTR) return true;
    readError_ = readErrno;
    Deliver(nullptr, 0);
    return false;
  }
  if (n == 0) return true;
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
  // With a filter attached the thread reads everything (the filter's faults
  // must reach it); paused, nothing is read.
  if (filtered_.load()) return 0;
  jsReads_.fetch_add(1, std::memory_order_relaxed);
  ssize_t bytes;
  {
    std::lock_guard<std::mutex> lock(readMutex_);
    if (paused_) return 0;
    bytes = read(uffd_, out, std::min(max, kBatch) * sizeof(uffd_msg));
  }
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

// Loop mode, one watchdog tick. Never waits on the uffd itself: the kernel
// wakes every waiter of a uffd on each fault, and a second thread woken per
// fault costs as much as the hop loop mode saves. False on a fatal error.
bool FaultReader::WatchTick(bool* wasReadable, uint64_t* lastReads, bool* deferred) {
  pollfd fd = {uffd_, POLLIN, 0};
  if (poll(&fd, 1, 0) <= 0) {
    *wasReadable = false;
    return true;
  }
  if (fd.revents & (POLLERR | POLLNVAL)) {
    readError_ = EBADF;
    Deliver(nullptr, 0);
    return false;
  }
  uint64_t reads = jsReads_.load(std::memory_order_relaxed);
  if (!*wasReadable || reads != *lastReads) {
    // Readable now; the JS thread gets a whole tick to read it.
    *wasReadable = true;
    *lastReads = reads;
    return true;
  }
  // Readable for a whole tick and the JS thread did not read: it is blocked
  // (in a fault of its own, or a fork() waiting for its FORK event) or busy.
  return ReadBatch(deferred);
}

// Whether the filter has background work, after a batch that may have made some.
FaultFilter::Work FaultReader::BackgroundState() {
  std::lock_guard<std::mutex> lock(filterMutex_);
  return filter_ && filter_->HasBackground() ? FaultFilter::Work::kMore : FaultFilter::Work::kIdle;
}

// One piece of the filter's background work (nothing waits to be read).
FaultFilter::Work FaultReader::RunBackground() {
  std::lock_guard<std::mutex> lock(filterMutex_);
  if (!filter_) return FaultFilter::Work::kIdle;
  filter_->BeginBatch();
  FaultFilter::Work work = filter_->Background(uffd_);
  filter_->EndBatch();
  return work;
}

void FaultReader::Run() {
  pollfd fds[3] = {{stopFd_, POLLIN, 0}, {controlFd_, POLLIN, 0}, {uffd_, POLLIN, 0}};
  int strikes = 0;
  bool deferred = false;  // the filter has faults to retry
  using Work = FaultFilter::Work;
  Work background = Work::kIdle;  // the filter's background work
  bool wasReadable = false;
  uint64_t lastReads = 0;
  for (;;) {
    bool paused;
    {
      std::lock_guard<std::mutex> lock(readMutex_);
      paused = paused_;
    }
    // Loop mode without a filter: the JS thread reads; only watch.
    bool watching = watchdog_ && !paused && !filtered_.load();
    // Paused or watching, the uffd is left out of the poll set: paused, its
    // messages stay in the kernel until resumed (or stopped).
    // Background work goes on while nothing is to be read: poll without
    // waiting between its pieces.
    int timeout = paused                                        ? kPausedCheckMs
                  : watching                                    ? kWatchdogTickMs
                  : background == Work::kMore                   ? 0
                  : deferred || background == Work::kBlocked    ? 1
                                                                : -1;
    int ready = poll(fds, paused || watching ? 2 : 3, timeout);
    if (ready < 0) {
      if (errno == EINTR) continue;
      readError_ = errno;
      break;
    }
    if (ready == 0) {
      if (deferred) {
        std::lock_guard<std::mutex> lock(filterMutex_);
        if (filter_) {
          filter_->BeginBatch();
          deferred = filter_->RetryDeferred(uffd_);
          filter_->EndBatch();
        } else {
          deferred = false;
        }
      }
      if (!paused && !watching && background != Work::kIdle) background = RunBackground();
      if (watching) {
        if (!WatchTick(&wasReadable, &lastReads, &deferred)) break;
        continue;
      }
      if (!paused) continue;
      // Paused and idle: a JS thread blocked in a userfault would stay so
      // for ever (it is the one that would call resumeReading()).
      strikes = JsThreadInUserfault() ? strikes + 1 : 0;
      if (strikes >= kPausedStrikes) {
        std::lock_guard<std::mutex> lock(readMutex_);
        paused_ = false;
        strikes = 0;
      }
      continue;
    }
    if (fds[0].revents) break;
    if (fds[1].revents) {
      uint64_t count;
      ssize_t ignored = read(controlFd_, &count, sizeof count);
      (void)ignored;
      wasReadable = false;
      continue;  // re-read paused_ and the filter
    }
    if (paused || watching) continue;
    if (fds[2].revents & (POLLERR | POLLNVAL)) {
      readError_ = EBADF;
      Deliver(nullptr, 0);
      break;
    }
    if (!ReadBatch(&deferred)) break;
    background = BackgroundState();
  }
}

}  // namespace uffd
