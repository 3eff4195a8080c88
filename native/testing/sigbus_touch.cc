// Test support: a native thread that touches a range page by page and
// survives SIGBUS (UFFD_FEATURE_SIGBUS, UFFDIO_POISON, a truncated file),
// reporting per page the value read, the signals taken and their address.
//
// Two ways to go on after a signal:
// - skip (no callback): count it and move to the next page;
// - retry: post the signal to JavaScript and wait until it says resume
//   (after it resolved the page, e.g. with UFFDIO_COPY), then access the
//   page again from the start. The thread waits on a condition variable,
//   never spins, so "exactly one signal per page" is a real assertion.
//
// Like touch_threads.cc, the thread is detached, pins the regions it
// touches, and reports through a TSFN guarded by a flag that the
// environment's cleanup hook sets (detached_job.h; the hook also wakes a
// thread waiting for a resume, so it ends).
#include "sigbus_touch.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "../args.h"
#include "../memory/region_table.h"
#include "detached_job.h"
#include "sigbus_catch.h"

namespace uffd {
namespace {

enum TouchFlags : uint32_t {
  kWriteBack = 1,  // write the value read back to the same word (a WP fault if protected)
  kScan = 2,       // read every 32-bit word of the stride, count the nonzero ones
  kRetry = 4,      // after a signal, wait for resume() and access the page again
};

struct SigbusTouchJob : DetachedJob {
  uintptr_t address = 0;
  size_t length = 0;
  size_t stride = 0;
  uint32_t flags = 0;
  uint32_t maxSignals = 0;  // per page, in retry mode: then the page is given up
  size_t pages = 0;
  // Results, written by the thread before it reports.
  pid_t tid = 0;
  std::vector<uint32_t> values, readSignals, writeSignals, codes, nonzeroWords;
  std::vector<double> faultAddresses;
  std::vector<uint8_t> completed;
  bool aborted = false;
  // Shared with the JS thread, under `mutex`; a resume() or the environment
  // going notifies `wake`.
  bool waiting = false;  // posted a signal, waits for resume()
  bool abort = false;
  RegionPins pins;
  using DetachedJob::DetachedJob;
};

// Posts the signal on page `index` to JavaScript and waits for resume().
// False if the touch must stop (aborted, or the environment is going away).
bool AwaitResume(const std::shared_ptr<SigbusTouchJob>& job, size_t index, const SigbusFrame& frame, bool write) {
  std::unique_lock<std::mutex> lock(job->mutex);
  if (job->environmentGone || job->abort) return false;
  job->waiting = true;
  const double faultAddress = static_cast<double>(frame.faultAddress);
  const int code = frame.code;
  napi_status status = job->tsfn.NonBlockingCall([index, faultAddress, code, write](Napi::Env env, Napi::Function onSignal) {
    if (env == nullptr) return;
    try {
      onSignal.Call({Napi::Number::New(env, static_cast<double>(index)), Napi::Number::New(env, faultAddress),
                     Napi::Number::New(env, code), Napi::Boolean::New(env, write)});
    } catch (const Napi::Error&) {
      // lib/ catches everything itself; nothing to add here.
    }
  });
  if (status != napi_ok) return false;  // napi_closing: the environment is ending
  job->wake.wait(lock, [&] { return job->environmentGone || !job->waiting; });
  return !job->environmentGone && !job->abort;
}

void Touch(std::shared_ptr<SigbusTouchJob> job) {
  job->tid = static_cast<pid_t>(syscall(SYS_gettid));
  const bool writeBack = job->flags & kWriteBack;
  const bool scan = job->flags & kScan;
  const bool retry = job->flags & kRetry;
  bool stop = false;
  for (size_t i = 0; i < job->pages && !stop; i++) {
    {
      std::lock_guard<std::mutex> lock(job->mutex);
      if (job->environmentGone || job->abort) break;
    }
    const uintptr_t base = job->address + i * job->stride;
    auto* word = reinterpret_cast<volatile uint32_t*>(base);
    for (;;) {
      SigbusFrame frame;
      // Written between sigsetjmp and a possible siglongjmp: volatile, so
      // their values are defined after the jump.
      volatile bool writing = false;
      volatile uint32_t seen = 0;
      if (sigsetjmp(frame.jump, 1) == 0) {
        ArmSigbus(&frame);
        seen = *word;
        uint32_t nonzero = 0;
        if (scan) {
          const size_t end = job->stride < job->length - i * job->stride ? job->stride : job->length - i * job->stride;
          for (size_t offset = 0; offset + sizeof(uint32_t) <= end; offset += sizeof(uint32_t)) {
            if (*reinterpret_cast<volatile uint32_t*>(base + offset) != 0) nonzero++;
          }
        }
        if (writeBack) {
          writing = true;
          *word = seen;
        }
        DisarmSigbus();
        job->values[i] = seen;
        job->nonzeroWords[i] = nonzero;
        job->completed[i] = 1;
        break;
      }
      // SIGBUS: the handler disarmed the frame and jumped here.
      const bool write = writing;
      (write ? job->writeSignals : job->readSignals)[i]++;
      if (write) job->values[i] = seen;  // the read before it went through
      job->faultAddresses[i] = static_cast<double>(frame.faultAddress);
      job->codes[i] = static_cast<uint32_t>(frame.code);
      if (!retry) break;
      if (job->readSignals[i] + job->writeSignals[i] >= job->maxSignals) break;
      if (!AwaitResume(job, i, frame, write)) {
        stop = true;
        break;
      }
    }
  }
  // Done with the memory: an unmap waiting for this thread may go ahead.
  UnpinRegions(job->pins);
  std::lock_guard<std::mutex> lock(job->mutex);
  job->aborted = job->abort;
  SettleJob(job, [job](Napi::Env env) {
    auto u32 = [&](const std::vector<uint32_t>& v) {
      auto a = Napi::Uint32Array::New(env, v.size());
      if (!v.empty()) memcpy(a.Data(), v.data(), v.size() * sizeof(uint32_t));
      return a;
    };
    Napi::Object result = Napi::Object::New(env);
    result.Set("tid", Napi::Number::New(env, job->tid));
    result.Set("values", u32(job->values));
    result.Set("readSignals", u32(job->readSignals));
    result.Set("writeSignals", u32(job->writeSignals));
    result.Set("codes", u32(job->codes));
    result.Set("nonzeroWords", u32(job->nonzeroWords));
    auto addresses = Napi::Float64Array::New(env, job->pages);
    if (job->pages) memcpy(addresses.Data(), job->faultAddresses.data(), job->pages * sizeof(double));
    result.Set("faultAddresses", addresses);
    auto completed = Napi::Uint8Array::New(env, job->pages);
    if (job->pages) memcpy(completed.Data(), job->completed.data(), job->pages);
    result.Set("completed", completed);
    result.Set("aborted", Napi::Boolean::New(env, job->aborted));
    job->deferred.Resolve(result);
  });
}

// sigbusTouch(address, length, stride, flags, maxSignals, onSignal, ref)
//   -> [Promise<result>, resume(abort: boolean)]
// onSignal(index, faultAddress, code, write) is called in retry mode.
Napi::Value SigbusTouch(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 7);
  Napi::Env env = info.Env();
  auto job = std::make_shared<SigbusTouchJob>(env);
  job->address = UintArg(info, 0);
  job->length = UintArg(info, 1);
  job->stride = UintArg(info, 2);
  job->flags = static_cast<uint32_t>(UintArg(info, 3));
  job->maxSignals = static_cast<uint32_t>(UintArg(info, 4));
  if (job->stride < sizeof(uint32_t) || job->length == 0) throw Napi::RangeError::New(env, "native: bad stride or length");
  if (!info[5].IsFunction()) throw Napi::TypeError::New(env, "native: onSignal must be a function");
  job->pages = (job->length + job->stride - 1) / job->stride;
  job->values.assign(job->pages, 0);
  job->readSignals.assign(job->pages, 0);
  job->writeSignals.assign(job->pages, 0);
  job->codes.assign(job->pages, 0);
  job->nonzeroWords.assign(job->pages, 0);
  job->faultAddresses.assign(job->pages, 0);
  job->completed.assign(job->pages, 0);

  EnsureSigbusHandler();
  CreateJobTsfn(env, *job, "userfaultfd:sigbus-touch", info[5].As<Napi::Function>());
  if (!info[6].ToBoolean()) job->tsfn.Unref(env);
  GuardJob(env, job);
  job->pins = PinRegions(job->address, job->length);

  auto resume = Napi::Function::New(env, [job](const Napi::CallbackInfo& ri) {
    {
      std::lock_guard<std::mutex> lock(job->mutex);
      if (ri.Length() > 0 && ri[0].ToBoolean()) job->abort = true;
      job->waiting = false;
    }
    job->wake.notify_all();
  }, "resume");

  std::thread(Touch, job).detach();
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, job->deferred.Promise());
  out.Set(1u, resume);
  return out;
}

}  // namespace

void InitSigbusTouch(Napi::Env env, Napi::Object exports) {
  exports.Set("sigbusTouch", Napi::Function::New(env, SigbusTouch, "sigbusTouch"));
}

}  // namespace uffd
