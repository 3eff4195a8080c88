// The per-fault path of the pager: find the range, pick the read-ahead
// window, fill it with one ioctl, and deal with the outcomes real handlers
// get wrong (EEXIST is success, EAGAIN defers, a source failure resolves the
// page by the policy). Range bookkeeping follows REMAP, REMOVE and UNMAP.
#include "pager_core.h"

#include <errno.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "../uapi/userfaultfd_compat.h"

namespace uffd::pager {

namespace {
constexpr int kMaxTries = 5000;  // EAGAIN retries (1 ms apart) before a deferred fault is woken and dropped
// The asynchronous read-ahead fills its windows in pieces of this size (or
// one page, if larger), between batches: a fault read meanwhile waits for
// one piece at most (tens of µs).
constexpr uint64_t kAsyncChunk = 256 << 10;
}

uint64_t NowNs() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

Core::Core(std::shared_ptr<Shared> shared, bool child, pid_t jsThreadId)
    : shared_(std::move(shared)), child_(child), jsThreadId_(jsThreadId) {
  async_.reserve(kMaxAsync);
}

void Core::Quiesce() {
  // A batch takes microseconds; the bound only guards against a reader
  // stuck in an ioctl (its own memory as a source), never expected.
  uint64_t deadline = NowNs() + 200'000'000;
  while (batches_.load() > 0 && NowNs() < deadline) std::this_thread::yield();
}

Range* Core::Find(uint64_t address) {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), address,
                             [](uint64_t a, const Range& r) { return a < r.start; });
  if (it == ranges_.begin()) return nullptr;
  --it;
  return address < it->end ? &*it : nullptr;
}

bool Core::Serve(const Range& range) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const Range& r : ranges_) {
    if (r.start < range.end && range.start < r.end) return false;
  }
  std::vector<Range> one{range};
  Insert(std::move(one));
  return true;
}

void Core::Insert(std::vector<Range>&& ranges) {
  for (Range& r : ranges) ranges_.push_back(std::move(r));
  std::sort(ranges_.begin(), ranges_.end(), [](const Range& a, const Range& b) { return a.start < b.start; });
}

// Splits ranges at `start` and `end` and moves the parts inside into `removed`.
void Core::Cut(uint64_t start, uint64_t end, std::vector<Range>* removed) {
  DropAsync(start, end);
  std::vector<Range> kept;
  for (Range& r : ranges_) {
    if (r.end <= start || r.start >= end) {
      kept.push_back(std::move(r));
      continue;
    }
    if (r.start < start) {
      Range left = r;
      left.end = start;
      kept.push_back(left);
    }
    if (r.end > end) {
      Range right = r;
      right.offset = r.offset + (end - r.start);
      right.start = end;
      right.raWindow = 0;
      right.raMarker = false;
      kept.push_back(right);
    }
    Range inside = r;
    inside.start = std::max(r.start, start);
    inside.end = std::min(r.end, end);
    inside.offset = r.offset + (inside.start - r.start);
    inside.raWindow = 0;
    inside.raMarker = false;
    if (removed) removed->push_back(std::move(inside));
  }
  ranges_ = std::move(kept);
}

uint64_t Core::Unserve(uint64_t start, uint64_t end) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Range> removed;
  Cut(start, end, &removed);
  uint64_t bytes = 0;
  for (const Range& r : removed) bytes += r.end - r.start;
  return bytes;
}

std::vector<Range> Core::Snapshot() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Range> copy = ranges_;
  for (Range& r : copy) {
    r.raWindow = 0;
    r.raMarker = false;
  }
  return copy;
}

bool Core::NextChunk(uint64_t cursor, uint64_t end, uint64_t max, Range* out) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const Range& r : ranges_) {
    if (r.end <= cursor || r.source->kind == SourceKind::kFunction) continue;
    if (r.start >= end) return false;
    *out = r;
    out->start = std::max(r.start, cursor);
    out->offset = r.offset + (out->start - r.start);
    uint64_t chunk = std::max(max - max % r.pageSize, r.pageSize);
    out->end = std::min({r.end, end, out->start + chunk});
    // A chunk that would end inside a page (end not page-aligned) is cut to whole pages.
    out->end -= (out->end - out->start) % r.pageSize;
    if (out->end <= out->start) return false;
    return true;
  }
  return false;
}

// Adaptive read-ahead, as CRIU's lazy-pages: the window doubles while faults
// follow each other, and falls back to the minimum on a random access.
uint64_t Core::Window(Range& range, uint64_t page) {
  const Config& c = shared_->config;
  uint64_t ps = range.pageSize;
  uint64_t window;
  if (c.readAheadMax <= ps) {
    window = ps;
  } else if (range.raWindow != 0 && page == range.raNext) {
    window = NextWindow(range, range.raWindow);
  } else {
    window = c.readAheadMin;
  }
  window = std::max(ps, window - window % ps);
  range.raWindow = window;
  return std::min(window, range.end - page);
}

// The window after one of `window` bytes while faults stay sequential.
uint64_t Core::NextWindow(const Range& range, uint64_t window) const {
  uint64_t next = std::min(window * 2, shared_->config.readAheadMax);
  return std::max(range.pageSize, next - next % range.pageSize);
}

// Asynchronous read-ahead, as the kernel's (PG_readahead): the window
// [marker, marker + window) is filled in the background but for its first
// page, the marker. The thread that reaches the window faults there, which
// says the window is being used: the marker is mapped and the next window
// is scheduled, while the thread goes on through this one. So the copy of
// each window overlaps the thread's work in the one before, and the thread
// waits for one page per window (a fault is the only sign of its progress:
// touching present pages raises nothing).
void Core::ScheduleAsync(Range& range, uint64_t marker, uint64_t window) {
  range.raNext = marker;
  range.raWindow = window;
  range.raMarker = marker < range.end;
  uint64_t end = std::min(range.end, marker + window);
  if (!range.raMarker || marker + range.pageSize >= end || async_.size() >= kMaxAsync) return;
  async_.push_back(AsyncWindow{marker + range.pageSize, end});
  asyncPending_ = true;
}

Core::AsyncWindow* Core::FindAsync(uint64_t page) {
  for (AsyncWindow& w : async_) {
    if (w.next <= page && page < w.end) return &w;
  }
  return nullptr;
}

// The memory changed under [start, end) (REMOVE, UNMAP, REMAP, unserve): no
// asynchronous window fills anything there from now on. A window is cut at
// `start` (nothing past it is filled), so that none is split (no allocation).
void Core::DropAsync(uint64_t start, uint64_t end) {
  size_t kept = 0;
  for (AsyncWindow w : async_) {
    if (w.next < end && start < w.end) w.end = std::max(w.next, std::min(w.end, start));
    if (w.next < w.end) async_[kept++] = w;
  }
  async_.resize(kept);
  asyncPending_ = kept > 0;
}

// One piece of the first asynchronous window, on the reader thread while no
// message waits (FaultFilter::Background). Its outcomes are the prefetch's:
// EEXIST skips the page, EAGAIN waits for the pending event to be read, and
// anything else (a short file, memory gone) leaves the rest of the window to
// the fault path, which reports failures as the pages are touched.
FaultFilter::Work Core::Background(int uffd) {
  std::lock_guard<std::mutex> lock(mutex_);
  Stats& stats = shared_->stats;
  while (!async_.empty()) {
    AsyncWindow& w = async_.front();
    Range* range = Find(w.next);
    if (!range || range->source->kind == SourceKind::kFunction) {
      async_.erase(async_.begin());
      continue;
    }
    uint64_t ps = range->pageSize;
    uint64_t length = std::min({w.end, range->end, w.next + std::max(kAsyncChunk, ps)}) - w.next;
    length -= length % ps;
    if (length == 0) {
      async_.erase(async_.begin());
      continue;
    }
    FillResult r = Fill(uffd, *range->source, range->offset + (w.next - range->start), w.next, length, ps, &buffers_);
    if (r.done > 0) {
      stats.bytes += r.done;
      stats.readAheadPages += r.done / ps;
      stats.asyncReadAheadPages += r.done / ps;
      w.next += r.done;
    } else if (r.err == EEXIST) {
      w.next += ps;
    } else if (r.err == EAGAIN) {
      stats.eagain++;
      return Work::kBlocked;
    } else {
      w.next = w.end;
    }
    if (w.next >= w.end) async_.erase(async_.begin());
    break;
  }
  asyncPending_ = !async_.empty();
  return async_.empty() ? Work::kIdle : Work::kMore;
}

void Core::Fail(int fd, const Range& range, uint64_t page, int err, bool shortRead) {
  shared_->Fail(fd, page, range.pageSize, range.offset + (page - range.start), err, shortRead ? 1 : 2, &buffers_);
}

Core::Outcome Core::HandleFault(int fd, const uffd_msg& msg, uint64_t t0) {
  uint64_t address = msg.arg.pagefault.address;
  uint64_t flags = msg.arg.pagefault.flags;
  pid_t tid = static_cast<pid_t>(msg.arg.pagefault.feat.ptid);
  Range* range = Find(address);
  if (!range || (flags & UFFD_PAGEFAULT_FLAG_WP)) return Outcome::kPass;
  uint64_t ps = range->pageSize;
  uint64_t page = address & ~(ps - 1);
  Stats& stats = shared_->stats;

  if (flags & UFFD_PAGEFAULT_FLAG_MINOR) {
    // The page cache already holds the page: map it.
    uffdio_continue cont{{page, ps}, 0, 0};
    FillResult r = FromIoctl(ioctl(fd, UFFDIO_CONTINUE, &cont), cont.mapped);
    if (r.err == EAGAIN && r.done == 0) return Outcome::kDefer;
    stats.Fault(tid);
    stats.minorFaults++;
    if (r.err == EEXIST && r.done == 0) {
      stats.eexist++;
      Wake(fd, page, ps);
    } else if ((r.err == ENOENT || r.err == ESRCH) && r.done == 0) {
      Wake(fd, page, ps);  // gone: let the thread find out
    } else if (r.err != 0 && r.done == 0) {
      Fail(fd, *range, page, r.err, false);
    }
    stats.Latency(NowNs() - t0);
    return Outcome::kDone;
  }

  if (range->source->kind == SourceKind::kFunction) {
    // The JS thread cannot run the function while it is blocked in this
    // fault: leave it to the reader's jsThreadFaults policy.
    if (jsThreadId_ != 0 && tid == jsThreadId_) return Outcome::kPass;
    stats.Fault(tid);
    stats.functionFaults++;
    shared_->Request(shared_from_this(), fd, page, ps, range->offset + (page - range->start), tid,
                     (flags & UFFD_PAGEFAULT_FLAG_WRITE) != 0, range->source->tag, t0);
    return Outcome::kDone;
  }

  // What to fill now. (1) The fault is in an asynchronous window not filled
  // that far yet: the thread caught up with the background. The rest of
  // that window, now (the thread would wait for it anyway); what lies
  // before the fault is left to the background. (2) The marker of an
  // asynchronous window: that page, or the whole window if its filling has
  // not begun; then the next window is scheduled. (3) Otherwise the
  // adaptive window, now; a sequential one, with asynchronous read-ahead,
  // also schedules the next.
  const Config& c = shared_->config;
  bool async = c.readAheadAsync && c.readAheadMax > ps;
  bool sequential = range->raWindow != 0 && page == range->raNext;
  uint64_t previousWindow = range->raWindow;
  AsyncWindow* pending = async ? FindAsync(page) : nullptr;
  AsyncWindow* behind = nullptr;  // the marker's own window, if filling it has not begun
  bool marker = !pending && sequential && range->raMarker;
  uint64_t length;
  if (pending) {
    length = std::min(pending->end, range->end) - page;
  } else if (marker) {
    length = ps;
    behind = FindAsync(page + ps);
    if (behind && behind->next == page + ps) {
      length = std::min(behind->end, range->end) - page;
    } else {
      behind = nullptr;
    }
  } else {
    length = Window(*range, page);
  }
  FillResult r = Fill(fd, *range->source, range->offset + (page - range->start), page, length, ps, &buffers_);
  // Only a fault that mapped something moves the window: a second thread's
  // fault on a page just mapped (EEXIST) must not reset a sequential run.
  if (r.done == 0) range->raWindow = previousWindow;
  if (r.done > 0) {
    // The faulting page was first in the window: it is mapped and woken. A
    // page already present further on (EEXIST, reported as EAGAIN with
    // progress) just ends the window.
    stats.Fault(tid);
    stats.bytes += r.done;
    stats.readAheadPages += r.done / ps - 1;
    if (pending) {
      // The thread got into the marked window without faulting on the
      // marker (something else mapped it): it is still the sign to go on.
      bool inMarked = range->raMarker && page > range->raNext && page < range->raNext + range->raWindow;
      pending->end = page;
      if (pending->next >= pending->end) async_.erase(async_.begin() + (pending - async_.data()));
      asyncPending_ = !async_.empty();
      if (inMarked) ScheduleAsync(*range, range->raNext + range->raWindow, NextWindow(*range, range->raWindow));
    } else if (marker) {
      if (behind) async_.erase(async_.begin() + (behind - async_.data()));
      asyncPending_ = !async_.empty();
      ScheduleAsync(*range, page + range->raWindow, NextWindow(*range, range->raWindow));
    } else {
      range->raNext = page + r.done;
      range->raMarker = false;
      if (async && sequential) ScheduleAsync(*range, range->raNext, NextWindow(*range, range->raWindow));
    }
    stats.Latency(NowNs() - t0);
    return Outcome::kDone;
  }
  if (r.err == EAGAIN) {
    stats.eagain++;
    return Outcome::kDefer;
  }
  stats.Fault(tid);
  if (r.err == EEXIST) {
    // Another thread's fault, or a prefetch, mapped it first.
    stats.eexist++;
    Wake(fd, page, ps);
  } else if (r.err == ENOENT || r.err == ESRCH) {
    // The memory went away under us (unmapped, or the process exited).
    Wake(fd, page, ps);
  } else {
    Fail(fd, *range, page, r.err, r.shortRead);
  }
  stats.Latency(NowNs() - t0);
  return Outcome::kDone;
}

bool Core::HandleEvent(const uffd_msg& msg) {
  Note note;
  note.v[0] = static_cast<double>(NoteKind::kEvent);
  note.v[5] = child_ ? 1 : 0;
  switch (msg.event) {
    case UFFD_EVENT_REMAP: {
      uint64_t from = msg.arg.remap.from, to = msg.arg.remap.to, len = msg.arg.remap.len;
      std::vector<Range> moved;
      Cut(from, from + len, &moved);
      for (Range& r : moved) {
        r.start = r.start - from + to;
        r.end = r.end - from + to;
      }
      Insert(std::move(moved));
      shared_->StaleRequests(this, from, from + len);
      note.v[1] = UFFD_EVENT_REMAP;
      note.v[2] = static_cast<double>(from);
      note.v[3] = static_cast<double>(to);
      note.v[4] = static_cast<double>(len);
      break;
    }
    case UFFD_EVENT_REMOVE:
    case UFFD_EVENT_UNMAP: {
      uint64_t start = msg.arg.remove.start, end = msg.arg.remove.end;
      std::vector<Range> removed;
      DropAsync(start, end);  // nothing is filled there in the background after a REMOVE either
      if (msg.event == UFFD_EVENT_UNMAP) {
        Cut(start, end, nullptr);
        shared_->StaleRequests(this, start, end);
      } else if (shared_->config.afterRemove == AfterRemove::kZero) {
        // As Firecracker's handler after a balloon inflation: the guest gave
        // those pages back, and later faults there get zero pages.
        Cut(start, end, &removed);
        for (Range& r : removed) r.source = shared_->zeroSource;
        Insert(std::move(removed));
      }
      note.v[1] = msg.event;
      note.v[2] = static_cast<double>(start);
      note.v[3] = static_cast<double>(end);
      break;
    }
    case UFFD_EVENT_FORK: {
      // The child's uffd is served here, natively, with the same ranges: a
      // JavaScript reader of the same fd would race with it.
      shared_->stats.forks++;
      shared_->SpawnChild(static_cast<int>(msg.arg.fork.ufd), Snapshot());
      note.v[0] = static_cast<double>(NoteKind::kFork);
      note.v[1] = child_ ? 1 : 0;
      shared_->Notify(note);
      return false;
    }
    default:
      return true;
  }
  shared_->Notify(note);
  return !child_;
}

size_t Core::Filter(int uffd, uffd_msg* msgs, size_t n) {
  uint64_t t0 = NowNs();
  size_t kept = 0;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    ZeroRemovedFirst(msgs, n);
    for (size_t i = 0; i < n; i++) {
      bool keep;
      if (msgs[i].event == UFFD_EVENT_PAGEFAULT) {
        Outcome o = HandleFault(uffd, msgs[i], t0);
        if (o == Outcome::kDefer) deferred_.push_back(Deferred{msgs[i], t0, 0});
        keep = o == Outcome::kPass;
      } else if (msgs[i].event == UFFD_EVENT_FORK) {
        // Snapshot() takes the lock itself.
        lock.unlock();
        keep = HandleEvent(msgs[i]);
        lock.lock();
      } else {
        keep = HandleEvent(msgs[i]);
      }
      if (keep) msgs[kept++] = msgs[i];
    }
  }
  shared_->StatsTick();
  return kept;
}

// Reading a REMOVE event lets the madvise() that raised it go on and zap
// the pages, so a fault read in the same batch (typically a duplicate of a
// fault already resolved: several threads faulted on the page) could be
// served from the source after the zap and leave stale contents in a range
// the guest gave back. With afterRemove 'zero' the batch's REMOVEs are
// applied before any of its faults (HandleEvent applies them again, to no
// effect, in order). Faults read before the REMOVE was read were handled
// before the zap, and deferred ones look their range up again when retried.
void Core::ZeroRemovedFirst(const uffd_msg* msgs, size_t n) {
  if (shared_->config.afterRemove != AfterRemove::kZero) return;
  for (size_t i = 0; i < n; i++) {
    if (msgs[i].event != UFFD_EVENT_REMOVE) continue;
    std::vector<Range> removed;
    Cut(msgs[i].arg.remove.start, msgs[i].arg.remove.end, &removed);
    for (Range& r : removed) r.source = shared_->zeroSource;
    Insert(std::move(removed));
  }
}

void Core::WakeDeferred(int uffd) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Deferred& d : deferred_) Wake(uffd, d.msg.arg.pagefault.address & ~4095ull, 4096);
  deferred_.clear();
}

bool Core::RetryDeferred(int uffd) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (deferred_.empty()) return false;
  std::vector<Deferred> pending;
  pending.swap(deferred_);
  for (Deferred& d : pending) {
    Outcome o = HandleFault(uffd, d.msg, d.t0);
    if (o == Outcome::kDefer && ++d.tries < kMaxTries) {
      deferred_.push_back(d);
    } else if (o != Outcome::kDone) {
      // No longer ours (unserved, moved), or never settling: wake the thread
      // so it retries the access and faults again where it now belongs.
      uint64_t address = d.msg.arg.pagefault.address & ~4095ull;
      Wake(uffd, address, 4096);
    }
  }
  return !deferred_.empty();
}

}  // namespace uffd::pager
