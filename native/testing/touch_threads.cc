// Test support: native threads that read or write a range, page by page, so
// that faults are raised off the JS thread. Shipped for users' own
// selftest-style suites (lib/testing/).
//
// A toucher may stay blocked in a fault for ever (that is what some tests
// prove harmless), so it is detached, never joined. It reports through a
// TSFN guarded by a shared flag: once its environment is gone it stops
// between pages and never calls into it. It pins the library's regions it
// touches (memory/region_table.h), so that an environment ending, or an
// unmap(), while the thread is between the flag check and the access (or
// just woken from a fault) cannot unmap the page under it: that was SIGSEGV.
#include <errno.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "../args.h"
#include "../memory/region_table.h"
#include "detached_job.h"
#include "touch_threads.h"

namespace uffd {
namespace {

struct TouchJob : DetachedJob {
  uintptr_t address;
  size_t length;
  size_t stride;
  bool write;
  uint32_t value;
  int cpu = -1;        // pin the thread to this CPU (-1: no pinning)
  bool timed = false;  // record each access's latency (benchmarks)
  // Results, written by the thread before it reports.
  pid_t tid = 0;
  std::vector<uint32_t> seen;
  std::vector<double> latencies;  // microseconds, with `timed`
  double startUs = 0, endUs = 0;  // CLOCK_MONOTONIC, with `timed`
  RegionPins pins;  // taken on the JS thread, dropped by the toucher
  using DetachedJob::DetachedJob;
};

double MonotonicUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

void Touch(std::shared_ptr<TouchJob> job) {
  job->tid = static_cast<pid_t>(syscall(SYS_gettid));
  if (job->cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(job->cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
  }
  if (job->timed) {
    job->latencies.reserve(job->length / job->stride + 1);
    job->seen.reserve(job->length / job->stride + 1);
    job->startUs = MonotonicUs();
  }
  bool gone = false;
  for (size_t offset = 0; offset < job->length; offset += job->stride) {
    {
      std::lock_guard<std::mutex> lock(job->mutex);
      gone = job->environmentGone;
    }
    if (gone) break;
    auto* word = reinterpret_cast<volatile uint32_t*>(job->address + offset);
    double before = job->timed ? MonotonicUs() : 0;
    if (job->write) {
      *word = job->value + static_cast<uint32_t>(offset / job->stride);
    }
    uint32_t seen = *word;
    if (job->timed) job->latencies.push_back(MonotonicUs() - before);
    job->seen.push_back(seen);
  }
  if (job->timed) job->endUs = MonotonicUs();
  // Done with the memory: an unmap waiting for this thread may go ahead.
  UnpinRegions(job->pins);
  std::lock_guard<std::mutex> lock(job->mutex);
  SettleJob(job, [job](Napi::Env env) {
    Napi::Object result = Napi::Object::New(env);
    result.Set("tid", Napi::Number::New(env, job->tid));
    auto values = Napi::Uint32Array::New(env, job->seen.size());
    if (!job->seen.empty()) memcpy(values.Data(), job->seen.data(), job->seen.size() * sizeof(uint32_t));
    result.Set("values", values);
    if (job->timed) {
      auto latencies = Napi::Float64Array::New(env, job->latencies.size());
      if (!job->latencies.empty()) {
        memcpy(latencies.Data(), job->latencies.data(), job->latencies.size() * sizeof(double));
      }
      result.Set("latencies", latencies);
      result.Set("start", Napi::Number::New(env, job->startUs));
      result.Set("end", Napi::Number::New(env, job->endUs));
    }
    job->deferred.Resolve(result);
  });
}

// touch(address, length, stride, write, value, ref[, cpu, timed])
//   -> Promise<{tid, values[, latencies, start, end]}>.
// Reads (or writes value + page index, then reads back) the first 32-bit
// word of every `stride` bytes; `timed` also reports each access's latency
// and the start and end times (µs, CLOCK_MONOTONIC), for benchmarks.
Napi::Value TouchRange(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 6);
  auto job = std::make_shared<TouchJob>(info.Env());
  job->address = UintArg(info, 0);
  job->length = UintArg(info, 1);
  job->stride = UintArg(info, 2);
  job->write = info[3].ToBoolean();
  job->value = static_cast<uint32_t>(IntArg(info, 4));
  if (info.Length() >= 8) {
    job->cpu = static_cast<int>(IntArg(info, 6));
    job->timed = info[7].ToBoolean();
  }
  if (job->stride < sizeof(uint32_t)) throw Napi::RangeError::New(info.Env(), "native: stride too small");
  CreateJobTsfn(info.Env(), *job, "userfaultfd:touch");
  // Unreferenced, a toucher blocked in a fault nobody will resolve does not
  // hold the process open: the loop ends, 'exit' closes the userfaultfd,
  // and that wakes the thread.
  if (!info[5].ToBoolean()) job->tsfn.Unref(info.Env());
  GuardJob(info.Env(), job);
  job->pins = PinRegions(job->address, job->length);
  std::thread(Touch, job).detach();
  return job->deferred.Promise();
}

}  // namespace

void InitTouchThreads(Napi::Env env, Napi::Object exports) {
  exports.Set("touch", Napi::Function::New(env, TouchRange, "touch"));
}

}  // namespace uffd
