// Test support: fork() a child that runs a short scripted program on memory
// and exits, so that TypeScript suites can produce UFFD_EVENT_FORK (and
// remap, remove and unmap events from the child's own address space).
//
// We fork from a multi-threaded process, so the child may only use
// async-signal-safe calls: no malloc, no locks, no C++ runtime. Everything
// it needs is prepared before the fork (the program, a report area), and it
// uses raw system calls only. The fork itself is a raw clone(SIGCHLD): glibc's
// fork() would run pthread_atfork handlers that take locks.
//
// The child reports through a MAP_SHARED anonymous page instead of a pipe:
// writing it needs no system call, and it survives the child dying half way
// (by a signal or a SIGKILL on a timeout) with every value written so far.
//
// The parent waits on a dedicated std::thread (waitid), never the libuv
// threadpool: a child blocked in a userfault may not exit for a long time.
// The thread reports through a ThreadSafeFunction guarded by a flag that
// the environment's cleanup hook sets; that hook also kills a child still
// running, so a Worker that ends leaves no process behind.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "../args.h"
#include "../errors.h"
#include "detached_job.h"
#include "fork_child.h"
#include "longterm_pin.h"
#include "fork_sigbus_steps.h"

namespace uffd {
namespace {

// One step is kStepSlots doubles: [op, a0, a1, a2, a3, a4]. Addresses are
// below 2^47 on x86-64, so a double holds them exactly. lib/testing/fork-child.ts
// encodes the same layout.
constexpr size_t kStepSlots = 6;
enum StepOp : int {
  kRead = 1,     // address, length, stride
  kWrite = 2,    // address, length, stride, value: writes value + index, reads back
  kMadvise = 3,  // address, length, advice
  kMremap = 4,   // address, oldLength, newLength, flags, newAddress
  kMunmap = 5,   // address, length
  kRaise = 6,    // signal
  // 20+: steps that report into result slots, reserved by lib/ after the
  // read values (report->values[slot...]), so their results never mix with
  // the values of read/write steps.
  kPagemap = 20,       // address, slot: [stage, low word, high word] of /proc/self/pagemap
  kLongtermPin = 21,   // address, length, slot: [stage]; the pin is held until kLongtermUnpin or exit
  kLongtermUnpin = 22, // slot: [stage]; releases the most recent pin still held
};
// Pins a child may hold at once (lib/ checks the program).
constexpr int kMaxChildPins = 16;
// Exit code of a child whose step failed (its system call returned -1).
constexpr int kStepFailedExit = 125;

// The shared report area: written by the child, read by the parent after
// the child has been reaped.
struct Report {
  uint32_t valueCount;  // values written (may exceed capacity: counted, not stored)
  int32_t failedStep;   // -1, or the index of the step whose call failed
  int32_t error;        // errno of that call
  uint32_t reserved;
  uint32_t values[];
};

struct ForkJob : DetachedJob {
  std::vector<double> steps;
  size_t capacity = 0;  // values the report area holds
  int exitCode = 0;
  Report* report = nullptr;
  size_t reportBytes = 0;
  pid_t pid = 0;
  // Written by the waiter before it reports.
  int status = 0;
  int waitError = 0;
  bool reaped = false;  // under mutex; after this, pid may name another process: never signal it
  using DetachedJob::DetachedJob;
  ~ForkJob() override {
    if (report) munmap(report, reportBytes);
  }
  // Nobody will wait for the child any more; one blocked in a fault would
  // otherwise stay behind. SIGKILL also ends a wait in handle_userfault.
  void OnEnvironmentGone() override {
    if (!reaped) kill(pid, SIGKILL);
  }
};

// ---- the child: async-signal-safe code only ------------------------------

void ResetToDefault(int sig) {
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(sig, &dfl, nullptr);
}

[[noreturn]] void Fail(Report* report, size_t step) {
  report->error = errno;
  report->failedStep = static_cast<int32_t>(step);
  _exit(kStepFailedExit);
}

[[noreturn]] void RunChild(const double* steps, size_t count, Report* report, size_t capacity, int exitCode) {
  // The program needs no file descriptor. Holding copies of the parent's
  // would keep them open as long as this child lives: a userfaultfd the
  // parent closes would not be released (its blocked threads not woken),
  // and pipes would not see EOF.
  syscall(SYS_close_range, 3u, ~0u, 0u);
  // The parent's handlers (V8's SIGSEGV trap handler, libuv's signal pipe,
  // shared with the parent after the fork) must not run here: a bad access
  // or a raised signal has its default effect.
  const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP};
  for (int sig : fatal) ResetToDefault(sig);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);

  int pins[kMaxChildPins];
  int pinCount = 0;
  for (size_t i = 0; i < count; i++) {
    const double* s = steps + i * kStepSlots;
    const int op = static_cast<int>(s[0]);
    const uintptr_t address = static_cast<uintptr_t>(s[1]);
    const size_t length = static_cast<size_t>(s[2]);
    switch (op) {
      case kRead:
      case kWrite: {
        const size_t stride = static_cast<size_t>(s[3]);
        const uint32_t value = static_cast<uint32_t>(s[4]);
        for (size_t offset = 0, index = 0; offset < length; offset += stride, index++) {
          auto* word = reinterpret_cast<volatile uint32_t*>(address + offset);
          if (op == kWrite) *word = value + static_cast<uint32_t>(index);
          uint32_t seen = *word;
          if (report->valueCount < capacity) report->values[report->valueCount] = seen;
          report->valueCount++;
        }
        break;
      }
      case kMadvise:
        if (madvise(reinterpret_cast<void*>(address), length, static_cast<int>(s[3])) < 0) Fail(report, i);
        break;
      case kMremap: {
        void* moved = mremap(reinterpret_cast<void*>(address), length, static_cast<size_t>(s[3]),
                             static_cast<int>(s[4]), reinterpret_cast<void*>(static_cast<uintptr_t>(s[5])));
        if (moved == MAP_FAILED) Fail(report, i);
        break;
      }
      case kMunmap:
        if (munmap(reinterpret_cast<void*>(address), length) < 0) Fail(report, i);
        break;
      case kRaise: {
        // Default disposition, unblocked: the signal does what it does to a
        // plain process (most end it; an ignored one lets the program go on).
        const int sig = static_cast<int>(s[1]);
        ResetToDefault(sig);
        if (syscall(SYS_kill, syscall(SYS_getpid), sig) < 0) Fail(report, i);
        break;
      }
      case kPagemap: {
        // [stage, low, high]: stage 1 once opened (a later failure names
        // pread, an earlier one open), 3 with the entry stored.
        uint32_t* slot = report->values + static_cast<size_t>(s[2]);
        const int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        if (fd < 0) Fail(report, i);
        slot[0] = 1;
        uint64_t entry = 0;
        const off_t at = static_cast<off_t>(address / 4096 * sizeof entry);
        const ssize_t got = pread(fd, &entry, sizeof entry, at);
        if (got != static_cast<ssize_t>(sizeof entry)) {
          if (got >= 0) errno = EIO;  // a short read sets no errno
          Fail(report, i);
        }
        close(fd);
        slot[1] = static_cast<uint32_t>(entry);
        slot[2] = static_cast<uint32_t>(entry >> 32);
        slot[0] = 3;
        break;
      }
      case kLongtermPin: {
        // [stage]: 0, or the LongtermPinCall that failed, or 3 once pinned.
        uint32_t* slot = report->values + static_cast<size_t>(s[3]);
        int failedCall = 0;
        if (pinCount == kMaxChildPins) {
          errno = EMFILE;
          Fail(report, i);
        }
        const int fd = LongtermPinRange(address, length, &failedCall);
        if (fd < 0) {
          slot[0] = static_cast<uint32_t>(failedCall);
          errno = -fd;
          Fail(report, i);
        }
        pins[pinCount++] = fd;
        slot[0] = 3;
        break;
      }
      case kLongtermUnpin: {
        uint32_t* slot = report->values + static_cast<size_t>(s[1]);
        if (pinCount == 0) {
          errno = EINVAL;
          Fail(report, i);
        }
        const int result = LongtermUnpin(pins[--pinCount]);
        if (result < 0) {
          errno = -result;
          Fail(report, i);
        }
        slot[0] = 3;
        break;
      }
      default:
        // Steps 40+ (fork_sigbus_steps.h).
        if (RunForkSigbusStep(op, s, ForkStepReport{report->values, &report->valueCount, capacity})) break;
        errno = EINVAL;
        Fail(report, i);
    }
  }
  _exit(exitCode);
}

// ---- the parent ------------------------------------------------------------

Napi::Object ResultOf(Napi::Env env, ForkJob& job) {
  Napi::Object result = Napi::Object::New(env);
  const int status = job.status;
  result.Set("exitCode", WIFEXITED(status) ? Napi::Number::New(env, WEXITSTATUS(status)) : env.Null());
  result.Set("signal", WIFSIGNALED(status) ? Napi::Number::New(env, WTERMSIG(status)) : env.Null());
  const Report& report = *job.report;
  const size_t stored = report.valueCount < job.capacity ? report.valueCount : job.capacity;
  auto values = Napi::Uint32Array::New(env, stored);
  if (stored) memcpy(values.Data(), report.values, stored * sizeof(uint32_t));
  result.Set("values", values);
  // The whole report area: lib/ reads the result slots of steps 20+ there.
  auto slots = Napi::Uint32Array::New(env, job.capacity);
  if (job.capacity) memcpy(slots.Data(), report.values, job.capacity * sizeof(uint32_t));
  result.Set("slots", slots);
  result.Set("valueCount", Napi::Number::New(env, report.valueCount));
  result.Set("failedStep", Napi::Number::New(env, report.failedStep));
  result.Set("error", Napi::Number::New(env, report.error));
  return result;
}

void Wait(std::shared_ptr<ForkJob> job) {
  // WNOWAIT: the child stays a zombie, so its pid cannot be reused while
  // kill() (from the cleanup hook or kill()) may still target it.
  siginfo_t info;
  memset(&info, 0, sizeof info);
  int waitError = 0;
  while (waitid(P_PID, job->pid, &info, WEXITED | WNOWAIT) < 0) {
    if (errno != EINTR) {
      waitError = errno;  // ECHILD: someone else reaped it (SIGCHLD ignored?)
      break;
    }
  }
  std::lock_guard<std::mutex> lock(job->mutex);
  int status = 0;
  if (waitError == 0) {
    while (waitpid(job->pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  job->status = status;
  job->waitError = waitError;
  job->reaped = true;
  SettleJob(job, [job](Napi::Env env) {
    if (job->waitError) {
      job->deferred.Reject(ErrnoError(env, job->waitError, "waitid").Value());
    } else {
      job->deferred.Resolve(ResultOf(env, *job));
    }
  });
}

// forkChild(steps: Float64Array, capacity, exitCode) -> [pid, Promise, kill]
Napi::Value ForkChild(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 3);
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throw Napi::TypeError::New(env, "native: steps must be a Float64Array");
  }
  auto steps = info[0].As<Napi::Float64Array>();
  if (steps.ElementLength() % kStepSlots != 0) throw Napi::RangeError::New(env, "native: bad step layout");
  auto job = std::make_shared<ForkJob>(env);
  job->steps.assign(steps.Data(), steps.Data() + steps.ElementLength());
  job->capacity = UintArg(info, 1);
  job->exitCode = static_cast<int>(IntArg(info, 2));
  if (job->capacity > (1u << 24)) throw Napi::RangeError::New(env, "native: too many values");

  job->reportBytes = sizeof(Report) + job->capacity * sizeof(uint32_t);
  void* report = mmap(nullptr, job->reportBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (report == MAP_FAILED) ThrowErrno(env, errno, "mmap");
  job->report = static_cast<Report*>(report);
  job->report->failedStep = -1;

  CreateJobTsfn(env, *job, "userfaultfd:fork-child");

  // Everything the child touches exists now; from here to _exit it
  // allocates nothing.
  const double* program = job->steps.data();
  const size_t count = job->steps.size() / kStepSlots;
  Report* childReport = job->report;
  const size_t capacity = job->capacity;
  const int exitCode = job->exitCode;
  long pid = syscall(SYS_clone, SIGCHLD, 0, nullptr, nullptr, 0);
  if (pid == 0) RunChild(program, count, childReport, capacity, exitCode);
  if (pid < 0) {
    int err = errno;
    job->tsfn.Release();
    ThrowErrno(env, err, "fork");
  }
  job->pid = static_cast<pid_t>(pid);

  GuardJob(env, job);
  std::thread(Wait, job).detach();

  // kill(signal) -> whether it was sent: never once the child was reaped.
  auto killFn = Napi::Function::New(env, [job](const Napi::CallbackInfo& ki) -> Napi::Value {
    int sig = static_cast<int>(IntArg(ki, 0));
    std::lock_guard<std::mutex> lock(job->mutex);
    if (job->reaped) return Napi::Boolean::New(ki.Env(), false);
    if (kill(job->pid, sig) < 0) ThrowErrno(ki.Env(), errno, "kill");
    return Napi::Boolean::New(ki.Env(), true);
  }, "kill");

  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, Napi::Number::New(env, job->pid));
  out.Set(1u, job->deferred.Promise());
  out.Set(2u, killFn);
  return out;
}

}  // namespace

void InitForkChild(Napi::Env env, Napi::Object exports) {
  exports.Set("forkChild", Napi::Function::New(env, ForkChild, "forkChild"));
}

}  // namespace uffd
