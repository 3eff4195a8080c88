// Catching SIGBUS per access, on the thread that made it: test support for
// UFFD_FEATURE_SIGBUS and UFFDIO_POISON, where a touch must survive the
// signal and report it.
//
// A thread arms a SigbusFrame (a jump buffer of its own) around one access;
// the process-wide handler jumps back into that frame when the SIGBUS was
// raised by the kernel for an armed access. Any other SIGBUS (another
// thread, an access outside an armed window, a kill()) goes to the handler
// that was installed before ours, or gets the default action: the process
// still dies of a genuine SIGBUS.
//
// Use (sigsetjmp must run in the frame that later does the access):
//   SigbusFrame frame;
//   if (sigsetjmp(frame.jump, 1) == 0) {
//     ArmSigbus(&frame);
//     value = *word;
//     DisarmSigbus();
//   } else {
//     // frame.faultAddress, frame.code: the signal (already disarmed)
//   }
#pragma once

#include <setjmp.h>
#include <signal.h>

#include <cstdint>

namespace uffd {

struct SigbusFrame {
  sigjmp_buf jump;
  uintptr_t faultAddress = 0;  // si_addr of the caught signal
  int code = 0;                // si_code (BUS_ADRERR for a userfault, BUS_MCEERR_AR for poison)
};

// Installs the process-wide handler once (the first call wins; later calls
// do nothing). Not async-signal-safe: call it from a normal thread.
void EnsureSigbusHandler();

// For a forked child (async-signal-safe): installs the same handler in the
// child, chaining to whatever the parent's handler chains to.
void InstallSigbusHandlerInChild();

// Arms the calling thread's frame for the next access; the handler disarms
// before it jumps. Inline: only a thread-local store.
void ArmSigbus(SigbusFrame* frame);
void DisarmSigbus();

}  // namespace uffd
