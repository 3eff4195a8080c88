// Steps 40+ of the forked test child (fork_sigbus_steps.h). The child is a
// single-threaded copy of the parent made with a raw clone: only
// async-signal-safe calls here (sigaction, sigsetjmp/siglongjmp, loads and
// stores).
#include "fork_sigbus_steps.h"

#include <setjmp.h>

#include "sigbus_catch.h"

namespace uffd {
namespace {

void ReadSigbus(uintptr_t address, size_t length, size_t stride, uint32_t* slot) {
  InstallSigbusHandlerInChild();
  uint32_t* record = slot + 1;
  for (size_t offset = 0; offset < length; offset += stride, record += 5) {
    auto* word = reinterpret_cast<volatile uint32_t*>(address + offset);
    SigbusFrame frame;
    if (sigsetjmp(frame.jump, 1) == 0) {
      ArmSigbus(&frame);
      const uint32_t seen = *word;
      DisarmSigbus();
      record[0] = seen;
    } else {
      record[1] = 1;
      record[2] = static_cast<uint32_t>(frame.code);
      record[3] = static_cast<uint32_t>(frame.faultAddress);
      record[4] = static_cast<uint32_t>(static_cast<uint64_t>(frame.faultAddress) >> 32);
    }
    slot[0]++;
  }
}

void ReadWriteBack(uintptr_t address, size_t length, size_t stride, const ForkStepReport& report) {
  for (size_t offset = 0; offset < length; offset += stride) {
    auto* word = reinterpret_cast<volatile uint32_t*>(address + offset);
    const uint32_t seen = *word;
    *word = seen;
    if (*report.valueCount < report.capacity) report.values[*report.valueCount] = seen;
    (*report.valueCount)++;
  }
}

void ScanZero(uintptr_t address, size_t length, uint32_t* slot) {
  uint32_t nonzero = 0;
  uint32_t first = ~0u;
  for (size_t offset = 0; offset + sizeof(uint32_t) <= length; offset += sizeof(uint32_t)) {
    if (*reinterpret_cast<volatile uint32_t*>(address + offset) != 0) {
      if (nonzero++ == 0) first = static_cast<uint32_t>(offset);
    }
  }
  slot[1] = nonzero;
  slot[2] = first;
  slot[0] = 1;
}

}  // namespace

bool RunForkSigbusStep(int op, const double* s, const ForkStepReport& report) {
  const uintptr_t address = static_cast<uintptr_t>(s[1]);
  const size_t length = static_cast<size_t>(s[2]);
  switch (op) {
    case kForkReadSigbus:
      ReadSigbus(address, length, static_cast<size_t>(s[3]), report.values + static_cast<size_t>(s[4]));
      return true;
    case kForkReadWriteBack:
      ReadWriteBack(address, length, static_cast<size_t>(s[3]), report);
      return true;
    case kForkScanZero:
      ScanZero(address, length, report.values + static_cast<size_t>(s[3]));
      return true;
    default:
      return false;
  }
}

}  // namespace uffd
