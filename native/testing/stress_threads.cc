// Test support for the uffd-stress equivalent (lib/testing/stress.ts): the
// kernel selftest's "locking threads" and "background threads", as native
// threads, so that they raise and race real faults while JavaScript stays
// free to resolve them with the library under test.
//
// Every page of both areas starts with a PageHeader (a pthread mutex, a
// counter, the page's own index, a magic); the rest of the page holds a
// pattern that depends only on the page index. A page copied to the wrong
// place, copied twice over a live page, or left as a zero page, shows up as
// a wrong index, magic, counter or pattern word.
//
// One bounce (stressBounce): N locking threads lock pages (random or
// sequential, each on its own share or all racing on the same pages) and
// increment their counters, checking each one against the session's
// countVerify (written only under the page's mutex). Background copiers
// UFFDIO_COPY their share of the pages from src to dst (EEXIST is fine: a
// fault handler got there first); with WP they copy write-protected and
// write-protect their whole share half-way, as uffd-stress meant to. The
// copiers start only once every locking thread has taken its first lock,
// which can only happen after a fault resolved by the handler: every
// bounce raises faults. When the copiers are done, src is released (so a
// late copy from it could only map zeros, and must give EEXIST instead),
// the locking threads stop, and the result is reported through a TSFN.
//
// Threads that may stay blocked in a fault are never joined from the JS
// thread: a detached coordinator joins them. If the environment ends
// mid-bounce (worker.terminate()), its cleanup hook stops them, resolves
// every fault they could be blocked in, and waits for them (bounded) before
// its mappings are unmapped; nothing calls into the environment after that.
#include <errno.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../args.h"
#include "../uapi/userfaultfd_compat.h"
#include "detached_job.h"
#include "stress_pages.h"
#include "stress_threads.h"

namespace uffd {
namespace {

using namespace stress;

struct BounceJob;
void Quiesce(BounceJob& job);

struct BounceJob : DetachedJob {
  SessionRef session;
  int fd = -1;
  uintptr_t dst = 0;
  uintptr_t src = 0;
  unsigned lockers = 1;
  unsigned copiers = 1;
  uint32_t flags = 0;
  int releaseAdvice = -1;
  uint64_t seed = 0;

  std::atomic<bool> finished{false};  // the copiers are done: lockers stop
  std::atomic<bool> stop{false};      // the environment is gone: everyone stops
  std::atomic<unsigned> lockersStarted{0};

  // Threads still running, for the environment's cleanup hook (Quiesce).
  std::mutex runningMutex;
  std::condition_variable runningChanged;
  unsigned lockersRunning = 0;
  unsigned copiersRunning = 0;

  // Results, written by the threads before the coordinator reports.
  std::vector<uint64_t> locks;
  std::vector<pid_t> tids;
  std::atomic<uint64_t> copies{0};
  std::atomic<uint64_t> copyEexist{0};
  std::atomic<uint64_t> copyEagain{0};
  std::atomic<uint64_t> writeProtects{0};
  std::mutex resultMutex;
  Mismatch corruption;
  int corruptionThread = -1;
  int errorErrno = 0;
  std::string errorSyscall;
  uint64_t errorPage = 0;

  using DetachedJob::DetachedJob;

  // The environment is ending mid-bounce: stop every thread and let none
  // stay blocked in a fault (nothing will resolve them now), before its
  // mappings are unmapped. Report() then sees environmentGone and returns.
  void OnEnvironmentGone() override {
    stop.store(true);
    lockersStarted.fetch_add(lockers);
    lockersStarted.notify_all();
    Quiesce(*this);
  }

  bool Stopping() const { return stop.load(std::memory_order_relaxed); }

  void ThreadDone(unsigned BounceJob::*counter) {
    std::lock_guard<std::mutex> lock(runningMutex);
    this->*counter -= 1;
    runningChanged.notify_all();
  }

  // Waits (bounded) until `counter` is 0; false on timeout.
  bool WaitDone(unsigned BounceJob::*counter, std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(runningMutex);
    return runningChanged.wait_until(lock, deadline, [&] { return this->*counter == 0; });
  }

  void Fail(int err, const char* syscallName, uint64_t page) {
    std::lock_guard<std::mutex> lock(resultMutex);
    if (errorErrno != 0) return;
    errorErrno = err;
    errorSyscall = syscallName;
    errorPage = page;
  }
};

using JobRef = std::shared_ptr<BounceJob>;

void MarkLockerStarted(BounceJob& job) {
  job.lockersStarted.fetch_add(1, std::memory_order_release);
  job.lockersStarted.notify_all();
}

// xorshift64*: cheap per-thread randomness (uffd-stress calls getrandom()
// per lock, which mostly measures the syscall).
inline uint64_t NextRandom(uint64_t& state) {
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1Dull;
}

void Locker(JobRef job, unsigned cpu) {
  const Session& s = *job->session;
  auto& countVerify = job->session->countVerify;
  job->tids[cpu] = static_cast<pid_t>(syscall(SYS_gettid));
  const uint64_t n = s.nrPages;
  const bool random = job->flags & kRandom;
  const uint64_t share = n / job->lockers;
  uint64_t rng = (job->seed + 1) * kPatternMultiplier ^ (cpu + 1) * 0xD1B54A32D192ED03ull;
  if (rng == 0) rng = 1;
  uint64_t page = job->seed % n;
  if (!(job->flags & kRacing)) page = (page + cpu * share) % n;
  uint64_t locks = 0;
  while (!job->finished.load(std::memory_order_acquire) && !job->Stopping()) {
    page = random ? NextRandom(rng) % n : (page + 1) % n;
    PageHeader* h = HeaderOf(job->dst, s, page);
    pthread_mutex_lock(&h->mutex);
    Mismatch m;
    uint64_t count = h->count;
    if (h->magic != kMagic) {
      m = {true, page, kFieldMagic, kMagic, h->magic};
    } else if (h->index != page) {
      m = {true, page, kFieldIndex, page, h->index};
    } else if (count != countVerify[page]) {
      m = {true, page, kFieldCount, countVerify[page], count};
    } else {
      h->count = countVerify[page] = count + 1;
    }
    pthread_mutex_unlock(&h->mutex);
    if (m.found) {
      std::lock_guard<std::mutex> lock(job->resultMutex);
      if (!job->corruption.found) {
        job->corruption = m;
        job->corruptionThread = static_cast<int>(cpu);
      }
      break;
    }
    if (++locks == 1) MarkLockerStarted(*job);
  }
  if (locks == 0) MarkLockerStarted(*job);
  job->locks[cpu] = locks;
  job->ThreadDone(&BounceJob::lockersRunning);
}

// UFFDIO_COPY of one page, retried on EAGAIN. False on a real error.
bool CopyPage(BounceJob& job, uint64_t page) {
  const Session& s = *job.session;
  for (;;) {
    if (job.Stopping()) return false;
    uffdio_copy copy{};
    copy.dst = job.dst + page * s.pageSize;
    copy.src = job.src + page * s.pageSize;
    copy.len = s.pageSize;
    copy.mode = (job.flags & kWriteProtect) ? UFFDIO_COPY_MODE_WP : 0;
    if (ioctl(job.fd, UFFDIO_COPY, &copy) == 0) {
      if (copy.copy != static_cast<int64_t>(s.pageSize)) {
        job.Fail(EIO, "ioctl(UFFDIO_COPY)", page);
        return false;
      }
      job.copies.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    int err = errno;
    if (err == EAGAIN) {
      job.copyEagain.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    // The handler resolved a fault on this page first. Its copy woke the
    // waiters; deliberately no UFFDIO_WAKE here (uffd-stress wakes), so a
    // lost wake-up would hang the bounce instead of being papered over.
    if (err == EEXIST && copy.copy == -EEXIST) {
      job.copyEexist.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    job.Fail(err, "ioctl(UFFDIO_COPY)", page);
    return false;
  }
}

void CopyShare(BounceJob& job, uint64_t first, uint64_t end) {
  const Session& s = *job.session;
  // Wait until every locking thread has taken a lock: each first lock
  // needed a fault resolved by the handler, since no copier had run yet.
  for (;;) {
    unsigned started = job.lockersStarted.load(std::memory_order_acquire);
    if (started >= job.lockers || job.Stopping()) break;
    job.lockersStarted.wait(started);
  }
  const uint64_t mid = first + (end - first) / 2;
  for (uint64_t page = first; page < mid; page++) {
    if (!CopyPage(job, page)) return;
  }
  if (job.flags & kWriteProtect) {
    // Half of the share is mapped: protect all of it, so pages the locking
    // threads already wrote fault again (WP) and the unmapped half gets
    // markers on shmem and hugetlb.
    uffdio_writeprotect wp{};
    wp.range = {job.dst + first * s.pageSize, (end - first) * s.pageSize};
    wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
    if (ioctl(job.fd, UFFDIO_WRITEPROTECT, &wp) != 0) {
      job.Fail(errno, "ioctl(UFFDIO_WRITEPROTECT)", first);
      return;
    }
    job.writeProtects.fetch_add(1, std::memory_order_relaxed);
  }
  for (uint64_t page = mid; page < end; page++) {
    if (!CopyPage(job, page)) return;
  }
}

void Copier(JobRef job, uint64_t first, uint64_t end) {
  CopyShare(*job, first, end);
  job->ThreadDone(&BounceJob::copiersRunning);
}

// The environment is going away: its mappings are about to be unmapped, so
// no thread may touch them afterwards. Stop the threads, then map every page
// and clear write protection so that none stays blocked in a fault (the
// handler is gone), and wait for them. The waits are bounded so that a
// broken uffd cannot hang the teardown.
void Quiesce(BounceJob& job) {
  const Session& s = *job.session;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  // Copiers never block in a fault; once they are done nothing re-protects.
  if (!job.WaitDone(&BounceJob::copiersRunning, deadline)) return;
  for (uint64_t page = 0; page < s.nrPages; page++) {
    uffdio_copy copy{};
    copy.dst = job.dst + page * s.pageSize;
    copy.src = job.src + page * s.pageSize;
    copy.len = s.pageSize;
    ioctl(job.fd, UFFDIO_COPY, &copy);  // EEXIST for nearly all of them
  }
  if (job.flags & kWriteProtect) {
    uffdio_writeprotect wp{};
    wp.range = {job.dst, s.nrPages * s.pageSize};
    ioctl(job.fd, UFFDIO_WRITEPROTECT, &wp);
  }
  job.WaitDone(&BounceJob::lockersRunning, deadline);
}

void Report(JobRef job) {
  job->session->running.store(false);
  std::lock_guard<std::mutex> lock(job->mutex);
  SettleJob(job, [job](Napi::Env env) {
    Napi::Object r = Napi::Object::New(env);
    Napi::Array locks = Napi::Array::New(env, job->locks.size());
    Napi::Array tids = Napi::Array::New(env, job->tids.size());
    for (uint32_t i = 0; i < job->locks.size(); i++) {
      locks.Set(i, Napi::Number::New(env, static_cast<double>(job->locks[i])));
      tids.Set(i, Napi::Number::New(env, job->tids[i]));
    }
    r.Set("locks", locks);
    r.Set("tids", tids);
    r.Set("copies", Napi::Number::New(env, static_cast<double>(job->copies.load())));
    r.Set("copyEexist", Napi::Number::New(env, static_cast<double>(job->copyEexist.load())));
    r.Set("copyEagain", Napi::Number::New(env, static_cast<double>(job->copyEagain.load())));
    r.Set("writeProtects", Napi::Number::New(env, static_cast<double>(job->writeProtects.load())));
    if (job->corruption.found) {
      Napi::Object c = MismatchObject(env, job->corruption);
      c.Set("thread", Napi::Number::New(env, job->corruptionThread));
      r.Set("corruption", c);
    } else {
      r.Set("corruption", env.Null());
    }
    if (job->errorErrno != 0) {
      Napi::Object e = Napi::Object::New(env);
      e.Set("errno", Napi::Number::New(env, job->errorErrno));
      e.Set("syscall", Napi::String::New(env, job->errorSyscall));
      e.Set("page", Napi::Number::New(env, static_cast<double>(job->errorPage)));
      r.Set("error", e);
    } else {
      r.Set("error", env.Null());
    }
    job->deferred.Resolve(r);
  });
}

void Coordinate(JobRef job) {
  const Session& s = *job->session;
  std::vector<std::thread> lockers;
  std::vector<std::thread> copiers;
  for (unsigned cpu = 0; cpu < job->lockers; cpu++) lockers.emplace_back(Locker, job, cpu);
  const uint64_t share = s.nrPages / job->copiers;
  for (unsigned c = 0; c < job->copiers; c++) {
    uint64_t first = c * share;
    uint64_t end = c + 1 == job->copiers ? s.nrPages : first + share;
    copiers.emplace_back(Copier, job, first, end);
  }
  for (auto& t : copiers) t.join();
  // Every page is in dst now. Release src: a handler still resolving a
  // stale fault reads zeros from it, and its copy must give EEXIST rather
  // than map them (the verification would catch a zero page).
  if (job->releaseAdvice >= 0 && !job->Stopping() &&
      madvise(reinterpret_cast<void*>(job->src), s.nrPages * s.pageSize, job->releaseAdvice) != 0) {
    job->Fail(errno, "madvise", 0);
  }
  job->finished.store(true, std::memory_order_release);
  for (auto& t : lockers) t.join();
  Report(job);
}

// stressBounce(session, fd, dst, src, threads, flags, releaseAdvice, seed)
// -> Promise<result>. Starts `threads` locking threads and as many
// background copiers (at most one per page) on a detached coordinator.
Napi::Value StressBounce(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 8);
  Napi::Env env = info.Env();
  SessionRef session = SessionArg(info, 0);
  auto job = std::make_shared<BounceJob>(env);
  job->session = session;
  job->fd = FdArg(info, 1);
  job->dst = UintArg(info, 2);
  job->src = UintArg(info, 3);
  job->lockers = static_cast<unsigned>(UintArg(info, 4));
  job->flags = static_cast<uint32_t>(UintArg(info, 5));
  job->releaseAdvice = static_cast<int>(IntArg(info, 6));
  job->seed = UintArg(info, 7);
  if (job->lockers == 0 || job->lockers > 1024) throw Napi::RangeError::New(env, "native: bad thread count");
  job->copiers = static_cast<unsigned>(std::min<uint64_t>(job->lockers, session->nrPages));
  job->locks.assign(job->lockers, 0);
  job->tids.assign(job->lockers, 0);
  job->lockersRunning = job->lockers;
  job->copiersRunning = job->copiers;
  bool idle = false;
  if (!session->running.compare_exchange_strong(idle, true)) {
    throw Napi::Error::New(env, "native: a bounce is already running on this session");
  }
  CreateJobTsfn(env, *job, "userfaultfd:stress");
  GuardJob(env, job);
  std::thread(Coordinate, job).detach();
  return job->deferred.Promise();
}

}  // namespace

void InitStressThreads(Napi::Env env, Napi::Object exports) {
  exports.Set("stressBounce", Napi::Function::New(env, StressBounce, "stressBounce"));
}

}  // namespace uffd
