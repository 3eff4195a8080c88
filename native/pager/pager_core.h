// The pager's native fault path (see lib/pager/pager.ts for the API).
//
// A Core holds the served ranges of one userfaultfd and resolves their faults
// where the messages are read: on the uffd's reader thread (as its
// FaultFilter) for the pager's own uffd, on a ChildServer thread for the uffd
// of a forked child. Per fault it makes one ioctl: COPY from the buffer, from
// the file's or the memfd's mapping (pread() where a file cannot be mapped),
// ZEROPAGE, or CONTINUE for a minor fault, over a read-ahead window that
// grows on sequential faults. Faults of 'function' ranges become requests that JavaScript
// completes (pagerComplete). What a Core does not serve passes on to
// JavaScript unchanged.
//
// Shared is what the cores of one pager (parent and forked children) have in
// common: options, statistics, the notes queue to JavaScript (one
// non-blocking TSFN call per batch), pending function requests, child
// servers and prefetch threads.
#pragma once

#include <linux/userfaultfd.h>
#include <napi.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "../faults/fault_filter.h"
#include "../faults/fault_reader.h"

namespace uffd::pager {

enum class SourceKind : int { kZero = 0, kBuffer = 1, kFile = 2, kFunction = 3, kMemoryFile = 4 };
enum class FailurePolicy : int { kPoison = 0, kZero = 1 };
enum class AfterRemove : int { kZero = 0, kSource = 1 };

struct Source {
  SourceKind kind = SourceKind::kZero;
  // kBuffer: JavaScript memory that lib/ keeps referenced until the pager
  // closes; kMemoryFile: this source's own read-only mapping of the memfd;
  // kFile: its read-only mapping of the file as long as it was when served
  // (nullptr if it could not be mapped: pread() then).
  const uint8_t* data = nullptr;
  size_t size = 0;
  int fd = -1;  // kFile, kMemoryFile: a dup() owned by the source
  void* mapping = nullptr;
  size_t mappingLength = 0;
  uint32_t tag = 0;  // lib/'s id of the source (which function to call)
  ~Source();
};

struct Range {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t offset = 0;  // source offset of `start`
  uint64_t pageSize = 4096;
  std::shared_ptr<Source> source;
  uint64_t raNext = 0;    // read-ahead: the page after the last window
  uint64_t raWindow = 0;  // and that window's size
  // Asynchronous read-ahead: raNext is the marker, the first page of a window
  // [raNext, raNext + raWindow) the reader thread fills in the background
  // but for that page, left missing so that the thread reaching the window
  // says so by faulting there (as the kernel's PG_readahead page).
  bool raMarker = false;
};

struct Config {
  uint64_t readAheadMin = 64 << 10;
  uint64_t readAheadMax = 4 << 20;  // 0: one page per fault
  bool readAheadAsync = false;      // fill the next window before it is reached
  FailurePolicy onFailure = FailurePolicy::kPoison;
  AfterRemove afterRemove = AfterRemove::kZero;
  uint64_t statsIntervalNs = 0;
};

constexpr int kLatencyBuckets = 40;  // bucket i: [2^i, 2^(i+1)) ns

struct Stats {
  std::atomic<uint64_t> faults{0}, bytes{0}, readAheadPages{0}, asyncReadAheadPages{0}, prefetchedBytes{0}, eexist{0},
      eagain{0}, failures{0}, functionFaults{0}, minorFaults{0}, forks{0};
  std::atomic<uint64_t> latency[kLatencyBuckets] = {};
  std::mutex threadsMutex;
  std::unordered_map<pid_t, uint64_t> threads;
  void Fault(pid_t tid);
  void Latency(uint64_t ns);
};

// Notes to JavaScript: 8 doubles each (lib/pager/native-notes.ts decodes).
enum class NoteKind : int { kRequest = 1, kFailure = 2, kEvent = 3, kPrefetchDone = 4, kFork = 5, kStats = 6 };
struct Note {
  double v[8] = {};
};

// Read-only anonymous memory that reads as zeros (never populated), and a
// scratch buffer for pread(): grown on demand, owned by one thread at a time.
class Buffers {
 public:
  ~Buffers();
  const uint8_t* Zeros(size_t length);
  uint8_t* Scratch(size_t length);

 private:
  void* zeros_ = nullptr;
  size_t zerosLength_ = 0;
  void* scratch_ = nullptr;
  size_t scratchLength_ = 0;
};

// One ioctl filling [dst, dst + length) of `fd` from `source` at `offset`
// (a file source may be clipped to the whole pages the file has).
struct FillResult {
  int err = 0;          // 0, or the errno of the ioctl (or of pread)
  uint64_t done = 0;    // bytes placed (may be > 0 with err set)
  bool shortRead = false;
};
FillResult Fill(int fd, const Source& source, uint64_t offset, uint64_t dst, uint64_t length, uint64_t pageSize,
                Buffers* buffers);
// The kernel's progress field of an ioctl as a FillResult (pager_fill.cc).
FillResult FromIoctl(int rc, int64_t field);
int Wake(int fd, uint64_t start, uint64_t length);
uint64_t NowNs();

class Shared;

class Core : public FaultFilter, public std::enable_shared_from_this<Core> {
 public:
  Core(std::shared_ptr<Shared> shared, bool child, pid_t jsThreadId);

  size_t Filter(int uffd, uffd_msg* msgs, size_t n) override;
  bool RetryDeferred(int uffd) override;
  void BeginBatch() override { batches_++; }
  void EndBatch() override { batches_--; }
  bool HasBackground() override { return asyncPending_.load(); }
  Work Background(int uffd) override;
  // JavaScript thread: waits (briefly) until no batch is being handled, so
  // that what a returned madvise/mremap/munmap, or a woken thread, implies
  // is in the ranges and the counters.
  void Quiesce();
  // After detaching: wakes the faults still deferred (EAGAIN), which then
  // fault again and reach whoever reads the uffd now.
  void WakeDeferred(int uffd);

  // JavaScript thread. Serve returns false if the range overlaps one served.
  bool Serve(const Range& range);
  uint64_t Unserve(uint64_t start, uint64_t end);
  std::vector<Range> Snapshot();
  // For prefetch: the first range part inside [cursor, end), up to `max` bytes.
  bool NextChunk(uint64_t cursor, uint64_t end, uint64_t max, Range* out);

 private:
  enum class Outcome { kDone, kDefer, kPass };
  struct Deferred {
    uffd_msg msg;
    uint64_t t0;
    int tries;
  };
  // A window the asynchronous read-ahead still has to fill: [next, end).
  struct AsyncWindow {
    uint64_t next, end;
  };
  Outcome HandleFault(int fd, const uffd_msg& msg, uint64_t t0);
  uint64_t NextWindow(const Range& range, uint64_t window) const;
  void ScheduleAsync(Range& range, uint64_t marker, uint64_t window);
  AsyncWindow* FindAsync(uint64_t page);
  void DropAsync(uint64_t start, uint64_t end);
  bool HandleEvent(const uffd_msg& msg);  // true: also deliver it to JavaScript
  void ZeroRemovedFirst(const uffd_msg* msgs, size_t n);
  void Fail(int fd, const Range& range, uint64_t page, int err, bool shortRead);
  Range* Find(uint64_t address);
  void Cut(uint64_t start, uint64_t end, std::vector<Range>* removed);
  void Insert(std::vector<Range>&& ranges);
  uint64_t Window(Range& range, uint64_t page);

  std::shared_ptr<Shared> shared_;
  bool child_;
  pid_t jsThreadId_;
  std::atomic<int> batches_{0};
  std::mutex mutex_;  // ranges_, deferred_, async_, buffers_
  std::vector<Range> ranges_;  // sorted by start, disjoint
  std::vector<Deferred> deferred_;
  // Reserved up front and bounded: the reader thread should not allocate
  // (see FaultReader's queue). Full, a window is not scheduled, and its
  // thread faults in it as without asynchronous read-ahead.
  static constexpr size_t kMaxAsync = 16;
  std::vector<AsyncWindow> async_;
  std::atomic<bool> asyncPending_{false};
  Buffers buffers_;
};

// Serves the uffd of a forked child (from a FORK event) with a copy of the
// parent's ranges, on its own thread; faults outside them get zero pages.
class ChildServer {
 public:
  ChildServer(std::shared_ptr<Shared> shared, int fd, std::vector<Range> ranges);
  ~ChildServer();
  void Stop();
  // The child exited and the thread ended (it is joined by Stop()).
  bool Finished() const { return finished_.load(); }

 private:
  void Run();
  std::atomic<bool> finished_{false};
  std::atomic<bool> stopRequested_{false};
  int fd_;  // closed by Run() when the child exits, else by Stop()
  int stopFd_;
  std::shared_ptr<Core> core_;
  std::thread thread_;
  bool stopped_ = false;
};

// Background prefetch of [start, end) of a core's ranges at SCHED_IDLE.
class Prefetch {
 public:
  Prefetch(std::shared_ptr<Shared> shared, std::shared_ptr<Core> core, int fd, uint32_t id, uint64_t start, uint64_t end);
  ~Prefetch();
  void Stop();
  uint32_t Id() const { return id_; }
  bool Finished() const { return finished_.load(); }

 private:
  void Run();
  std::shared_ptr<Shared> shared_;
  std::shared_ptr<Core> core_;
  int fd_;
  uint32_t id_;
  uint64_t start_, end_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

class Shared : public std::enable_shared_from_this<Shared> {
 public:
  Shared(Napi::Env env, Napi::Function onNotes, const Config& config);
  const Config config;
  Stats stats;
  std::shared_ptr<Source> zeroSource;

  void Notify(const Note& note);
  std::vector<Note> DrainNotes();
  void StatsTick();

  // Function sources: a request per faulting page (a second fault on a page
  // already requested waits for the same COPY, which wakes every waiter).
  void Request(const std::shared_ptr<Core>& core, int fd, uint64_t page, uint64_t length, uint64_t offset, pid_t tid,
               bool write, uint32_t tag, uint64_t t0);
  // Returns 0 (resolved), EAGAIN (retry later), ESTALE (nothing to do), or
  // the errno of a failed COPY (the page was then resolved by the policy).
  int Complete(uint64_t id, const uint8_t* data, size_t length, bool fail);
  void StaleRequests(const Core* core, uint64_t start, uint64_t end);

  void SpawnChild(int fd, std::vector<Range> ranges);
  // Resolves a page by the failure policy and reports it.
  void Fail(int fd, uint64_t page, uint64_t pageSize, uint64_t offset, int err, int reason, Buffers* buffers);

  // JavaScript thread: stops children, wakes pending requests, releases the TSFN.
  void Close(bool teardown);
  bool Closed();
  void Ref(Napi::Env env, bool ref);

 private:
  struct PendingRequest {
    std::shared_ptr<Core> core;
    int fd;
    uint64_t page, length, offset, t0;
    bool stale;
  };
  std::mutex mutex_;  // everything below
  bool closed_ = false;
  ReaderTsfn tsfn_;
  std::vector<Note> notes_;
  bool signalled_ = false;
  std::map<uint64_t, PendingRequest> requests_;
  std::set<std::pair<const Core*, uint64_t>> requestedPages_;
  uint64_t lastRequest_ = 0;
  std::vector<std::unique_ptr<ChildServer>> children_;
  std::atomic<uint64_t> lastTick_{0};
  std::mutex failMutex_;
  Buffers failBuffers_;  // used by Complete, under failMutex_
};

void InitPager(Napi::Env env, Napi::Object exports);

}  // namespace uffd::pager
