// What the cores of one pager share: statistics, the notes queue to JavaScript, function
// requests, the failure policy, child servers (forked children's uffds) and
// background prefetch threads.
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>

#include "../uapi/userfaultfd_compat.h"
#include "pager_core.h"

namespace uffd::pager {

void Stats::Fault(pid_t tid) {
  faults++;
  std::lock_guard<std::mutex> lock(threadsMutex);
  threads[tid]++;
}

void Stats::Latency(uint64_t ns) {
  int bucket = ns == 0 ? 0 : 63 - __builtin_clzll(ns);
  latency[std::min(bucket, kLatencyBuckets - 1)]++;
}

namespace {
constexpr uint64_t kPrefetchChunk = 1 << 20;
constexpr uint64_t kPageSizes[] = {4096, 2ull << 20, 1ull << 30};
constexpr int kLivenessMs = 1000;          // how often an idle child server checks its process
constexpr uint64_t kProbeAddress = 1 << 16;  // mmap_min_addr: never mapped

// A fault of a child's uffd outside the served ranges: nobody else reads
// that fd, so resolve it (zero page, CONTINUE, or write-unprotect) with the
// first page size the kernel accepts.
void ResolveUnserved(int fd, const uffd_msg& msg, Buffers* buffers) {
  uint64_t address = msg.arg.pagefault.address;
  uint64_t flags = msg.arg.pagefault.flags;
  for (uint64_t ps : kPageSizes) {
    uint64_t page = address & ~(ps - 1);
    int rc;
    if (flags & UFFD_PAGEFAULT_FLAG_WP) {
      uffdio_writeprotect wp{{page, ps}, 0};
      rc = ioctl(fd, UFFDIO_WRITEPROTECT, &wp);
    } else if (flags & UFFD_PAGEFAULT_FLAG_MINOR) {
      uffdio_continue cont{{page, ps}, 0, 0};
      rc = ioctl(fd, UFFDIO_CONTINUE, &cont);
    } else {
      Source zero;
      FillResult r = Fill(fd, zero, 0, page, ps, ps, buffers);
      rc = r.err == 0 || r.done > 0 ? 0 : -1;
      errno = r.err;
    }
    if (rc == 0) return;
    if (errno == EEXIST) break;
    if (errno != EINVAL) break;
  }
  Wake(fd, address & ~4095ull, 4096);
}
}  // namespace

Shared::Shared(Napi::Env env, Napi::Function onNotes, const Config& cfg) : config(cfg) {
  zeroSource = std::make_shared<Source>();
  tsfn_ = ReaderTsfn::New(env, onNotes, "userfaultfd:pager", 0, 1);
  tsfn_.Unref(env);
}

void Shared::Notify(const Note& note) {
  bool call = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    notes_.push_back(note);
    if (!signalled_) signalled_ = call = true;
  }
  // Never blocking: at environment teardown the TSFN answers napi_closing.
  if (call) tsfn_.NonBlockingCall();
}

std::vector<Note> Shared::DrainNotes() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Note> out;
  out.swap(notes_);
  signalled_ = false;
  return out;
}

void Shared::StatsTick() {
  if (config.statsIntervalNs == 0) return;
  uint64_t now = NowNs();
  uint64_t last = lastTick_.load();
  if (now - last < config.statsIntervalNs || !lastTick_.compare_exchange_strong(last, now)) return;
  Note note;
  note.v[0] = static_cast<double>(NoteKind::kStats);
  Notify(note);
}

void Shared::Request(const std::shared_ptr<Core>& core, int fd, uint64_t page, uint64_t length, uint64_t offset,
                     pid_t tid, bool write, uint32_t tag, uint64_t t0) {
  Note note;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    if (!requestedPages_.insert({core.get(), page}).second) return;  // already asked for
    uint64_t id = ++lastRequest_;
    requests_[id] = PendingRequest{core, fd, page, length, offset, t0, false};
    note.v[0] = static_cast<double>(NoteKind::kRequest);
    note.v[1] = static_cast<double>(id);
    note.v[2] = static_cast<double>(page);
    note.v[3] = static_cast<double>(length);
    note.v[4] = static_cast<double>(offset);
    note.v[5] = tid;
    note.v[6] = write ? 1 : 0;
    note.v[7] = tag;
  }
  Notify(note);
}

void Shared::StaleRequests(const Core* core, uint64_t start, uint64_t end) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [id, r] : requests_) {
    if (r.core.get() == core && r.page < end && r.page + r.length > start) r.stale = true;
  }
}

int Shared::Complete(uint64_t id, const uint8_t* data, size_t length, bool fail) {
  PendingRequest req;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = requests_.find(id);
    if (it == requests_.end()) return ESTALE;
    req = it->second;
    if (req.stale) {
      requestedPages_.erase({req.core.get(), req.page});
      requests_.erase(it);
    }
  }
  if (req.stale) {
    // The page moved or went away: its thread refaults where it now belongs.
    Wake(req.fd, req.page, req.length);
    return ESTALE;
  }
  int result = 0;
  if (!fail) {
    uffdio_copy copy{req.page, reinterpret_cast<uint64_t>(data), std::min<uint64_t>(length, req.length), 0, 0};
    int rc = ioctl(req.fd, UFFDIO_COPY, &copy);
    int err = rc == 0 ? 0 : errno;
    if (err == EAGAIN && copy.copy <= 0) {
      stats.eagain++;
      return EAGAIN;  // still pending; lib/ retries
    }
    if (err == 0 || copy.copy > 0) {
      stats.bytes += req.length;
    } else if (err == EEXIST) {
      stats.eexist++;
      Wake(req.fd, req.page, req.length);
    } else if (err == ENOENT || err == ESRCH) {
      Wake(req.fd, req.page, req.length);
    } else {
      result = err;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.erase(id);
    requestedPages_.erase({req.core.get(), req.page});
  }
  if (fail || result != 0) {
    // lib/ reports the JavaScript cause; here only the page is resolved.
    std::lock_guard<std::mutex> lock(failMutex_);
    Fail(req.fd, req.page, req.length, req.offset, result, -1, &failBuffers_);
  }
  stats.Latency(NowNs() - req.t0);
  return result;
}

// reason: 1 short read, 2 source or ioctl errno, -1 reported by lib/ itself.
void Shared::Fail(int fd, uint64_t page, uint64_t pageSize, uint64_t offset, int err, int reason, Buffers* buffers) {
  stats.failures++;
  int resolvedErr = -1;
  if (config.onFailure == FailurePolicy::kPoison) {
    uffdio_poison poison{{page, pageSize}, 0, 0};
    resolvedErr = ioctl(fd, UFFDIO_POISON, &poison) == 0 ? 0 : errno;
  }
  // 'zero', or memory that cannot be poisoned: a page that fails again at
  // every fault would make its thread fault for ever.
  if (resolvedErr != 0 && resolvedErr != EEXIST) {
    Source zero;
    FillResult r = Fill(fd, zero, 0, page, pageSize, pageSize, buffers);
    resolvedErr = r.done > 0 ? 0 : r.err;
  }
  // Whatever happened, the faulting thread must not stay asleep.
  if (resolvedErr != 0) Wake(fd, page, pageSize);
  if (reason < 0) return;
  Note note;
  note.v[0] = static_cast<double>(NoteKind::kFailure);
  note.v[1] = static_cast<double>(page);
  note.v[2] = static_cast<double>(pageSize);
  note.v[3] = err;
  note.v[4] = reason;
  note.v[5] = static_cast<double>(offset);
  Notify(note);
}

void Shared::SpawnChild(int fd, std::vector<Range> ranges) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) {
    close(fd);  // wakes the child's faulting threads: its memory reads as unregistered
    return;
  }
  // Servers of children that have exited are done: join them now.
  children_.erase(std::remove_if(children_.begin(), children_.end(),
                                 [](const std::unique_ptr<ChildServer>& c) { return c->Finished(); }),
                  children_.end());
  children_.push_back(std::make_unique<ChildServer>(shared_from_this(), fd, std::move(ranges)));
}

bool Shared::Closed() {
  std::lock_guard<std::mutex> lock(mutex_);
  return closed_;
}

void Shared::Ref(Napi::Env env, bool ref) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return;
  if (ref) {
    tsfn_.Ref(env);
  } else {
    tsfn_.Unref(env);
  }
}

void Shared::Close(bool teardown) {
  std::vector<std::unique_ptr<ChildServer>> children;
  std::map<uint64_t, PendingRequest> requests;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    closed_ = true;
    children.swap(children_);
    requests.swap(requests_);
    requestedPages_.clear();
    notes_.clear();
  }
  // Faults still waiting for a function: wake them, so they fault again and
  // reach the uffd's own event stream (the ranges are no longer served).
  // Before the children stop: that closes the fds of their requests.
  for (auto& [id, r] : requests) Wake(r.fd, r.page, r.length);
  // A child spawning a grandchild now finds closed_ and closes its fd.
  for (auto& child : children) child->Stop();
  if (!teardown) tsfn_.Release();
}

ChildServer::ChildServer(std::shared_ptr<Shared> shared, int fd, std::vector<Range> ranges)
    : fd_(fd), stopFd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  core_ = std::make_shared<Core>(std::move(shared), true, 0);
  for (Range& r : ranges) core_->Serve(r);
  thread_ = std::thread([this] { Run(); });
}

ChildServer::~ChildServer() {
  Stop();
  if (stopFd_ >= 0) close(stopFd_);
}

void ChildServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopRequested_ = true;
  uint64_t one = 1;
  ssize_t ignored = write(stopFd_, &one, sizeof one);
  (void)ignored;
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

// Whether the process behind a uffd still exists. A uffd never reports the
// end of its process (poll says nothing); a resolving ioctl does: ESRCH once
// the mm is gone. The probe range is below any mapping (ENOENT otherwise).
namespace {
bool ProcessAlive(int fd) {
  uffdio_zeropage zp{{kProbeAddress, 4096}, UFFDIO_ZEROPAGE_MODE_DONTWAKE, 0};
  return ioctl(fd, UFFDIO_ZEROPAGE, &zp) == 0 || errno != ESRCH;
}
}  // namespace

void ChildServer::Run() {
  uffd_msg msgs[kBatch];
  Buffers buffers;
  pollfd fds[2] = {{fd_, POLLIN, 0}, {stopFd_, POLLIN, 0}};
  bool deferred = false;
  using Work = FaultFilter::Work;
  Work background = Work::kIdle;  // asynchronous read-ahead, as on the parent's reader thread
  for (;;) {
    int timeout = background == Work::kMore ? 0 : deferred || background == Work::kBlocked ? 1 : kLivenessMs;
    int ready = poll(fds, 2, timeout);
    if (ready < 0 && errno != EINTR) break;
    if (fds[1].revents) break;
    if (ready <= 0) {
      if (!deferred && background == Work::kIdle && !ProcessAlive(fd_)) break;  // the child exited: nothing more to serve
      deferred = core_->RetryDeferred(fd_);
      if (background != Work::kIdle) background = core_->Background(fd_);
      continue;
    }
    if (fds[0].revents & (POLLERR | POLLNVAL)) break;
    ssize_t bytes = read(fd_, msgs, sizeof msgs);
    if (bytes < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      break;
    }
    size_t n = core_->Filter(fd_, msgs, static_cast<size_t>(bytes) / sizeof(uffd_msg));
    for (size_t i = 0; i < n; i++) {
      if (msgs[i].event == UFFD_EVENT_PAGEFAULT) ResolveUnserved(fd_, msgs[i], &buffers);
    }
    deferred = core_->RetryDeferred(fd_);
    background = core_->HasBackground() ? Work::kMore : Work::kIdle;
  }
  if (!stopRequested_.load()) {
    // The child is gone: give its uffd back now rather than at close().
    close(fd_);
    fd_ = -1;
  }
  finished_ = true;
}

Prefetch::Prefetch(std::shared_ptr<Shared> shared, std::shared_ptr<Core> core, int fd, uint32_t id, uint64_t start,
                   uint64_t end)
    : shared_(std::move(shared)), core_(std::move(core)), fd_(fd), id_(id), start_(start), end_(end) {
  thread_ = std::thread([this] { Run(); });
}

Prefetch::~Prefetch() { Stop(); }

void Prefetch::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Prefetch::Run() {
  // Only idle CPU time: faulting threads and the serving thread come first.
  sched_param param{};
  pthread_setschedparam(pthread_self(), SCHED_IDLE, &param);
  Buffers buffers;
  uint64_t cursor = start_, bytes = 0;
  int lastErr = 0;
  Range chunk;
  while (!stop_.load() && core_->NextChunk(cursor, end_, kPrefetchChunk, &chunk)) {
    cursor = chunk.start;
    uint64_t length = chunk.end - chunk.start;
    FillResult r = Fill(fd_, *chunk.source, chunk.offset, chunk.start, length, chunk.pageSize, &buffers);
    if (r.done > 0) {
      bytes += r.done;
      shared_->stats.prefetchedBytes += r.done;
      shared_->stats.bytes += r.done;
      cursor += r.done;
    } else if (r.err == EEXIST) {
      cursor += chunk.pageSize;  // already there: skip it
    } else if (r.err == EAGAIN) {
      usleep(1000);  // the mapping is changing; the serving thread reads the event
    } else {
      // A short file or a vanished range: leave those pages to the fault
      // path, which reports failures as they are touched.
      lastErr = r.err;
      cursor = chunk.end;
    }
  }
  Note note;
  note.v[0] = static_cast<double>(NoteKind::kPrefetchDone);
  note.v[1] = id_;
  note.v[2] = static_cast<double>(bytes);
  note.v[3] = lastErr;
  note.v[4] = stop_.load() ? 1 : 0;
  finished_ = true;
  shared_->Notify(note);
}

}  // namespace uffd::pager
