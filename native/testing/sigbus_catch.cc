// The process-wide SIGBUS handler behind SigbusFrame (sigbus_catch.h).
//
// Signal dispositions are per process, so this is one of the few
// process-wide pieces of the addon: installed once, never removed (an addon
// is never unloaded), and stateless apart from the handler it chains to.
// Which thread is catching is thread-local, in the initial-exec TLS model:
// reading it from a signal handler is a plain load from the thread pointer
// (no __tls_get_addr, which may allocate), so it is async-signal-safe on
// every thread, even one that never armed a frame.
#include "sigbus_catch.h"

#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mutex>

namespace uffd {
namespace {

__attribute__((tls_model("initial-exec"))) thread_local SigbusFrame* t_armed = nullptr;

// Written once, before the handler that reads it is installed.
struct sigaction g_previous;
// Set in a forked test child only (its own copy of this variable): there
// the parent's handlers must not run, a stray SIGBUS gets the default action.
bool g_inForkedChild = false;

void Chain(int sig, siginfo_t* info, void* context) {
  const struct sigaction& prev = g_previous;
  if (g_inForkedChild) {
    // Fall through to the default action below.
  } else if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction) prev.sa_sigaction(sig, info, context);
    return;
  } else if (prev.sa_handler == SIG_IGN) {
    // A sent SIGBUS stays ignored. One raised by a fault cannot be: the
    // kernel forces the default action then, and so do we (returning would
    // run the access again, for ever).
    if (info == nullptr || info->si_code <= 0) return;
  } else if (prev.sa_handler != SIG_DFL) {
    prev.sa_handler(sig);
    return;
  }
  // The default action: restore it, so that the faulting instruction, run
  // again on return, ends the process with SIGBUS as if we were not here. A
  // signal sent by kill() is not raised again by returning: send it again.
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGBUS, &dfl, nullptr);
  if (info == nullptr || info->si_code <= 0) {
    syscall(SYS_tgkill, syscall(SYS_getpid), syscall(SYS_gettid), SIGBUS);
  }
}

void OnSigbus(int sig, siginfo_t* info, void* context) {
  SigbusFrame* frame = t_armed;
  // si_code > 0: raised by the kernel for an access, not sent by a process.
  if (frame != nullptr && info != nullptr && info->si_code > 0) {
    t_armed = nullptr;
    frame->faultAddress = reinterpret_cast<uintptr_t>(info->si_addr);
    frame->code = info->si_code;
    // Restores the signal mask saved by sigsetjmp(…, 1): SIGBUS, blocked
    // while this handler runs, is unblocked again.
    siglongjmp(frame->jump, 1);
  }
  Chain(sig, info, context);
}

void Install() {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = OnSigbus;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  sigaction(SIGBUS, &action, nullptr);
}

}  // namespace

void EnsureSigbusHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Read the previous handler first: OnSigbus may run as soon as it is
    // installed, and must find g_previous complete.
    sigaction(SIGBUS, nullptr, &g_previous);
    Install();
  });
}

void InstallSigbusHandlerInChild() {
  g_inForkedChild = true;
  Install();
}

void ArmSigbus(SigbusFrame* frame) {
  t_armed = frame;
  // The access that follows must not be moved before the store.
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

void DisarmSigbus() {
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  t_armed = nullptr;
}

}  // namespace uffd
