// Steps 40+ of a forked test child's program (fork_child.cc runs them):
// reads that survive SIGBUS, read-and-write-back, and a zero scan. Like the
// rest of the child, async-signal-safe only.
#pragma once

#include <cstddef>
#include <cstdint>

namespace uffd {

enum ForkSigbusStepOp : int {
  // address, length, stride, slot: [strides done, then per stride
  // value, signals, si_code, si_addr low, si_addr high]
  kForkReadSigbus = 40,
  // address, length, stride: like read, and writes each value read back
  kForkReadWriteBack = 41,
  // address, length, slot: [done, nonzero 32-bit words, first nonzero offset or ~0]
  kForkScanZero = 42,
};

// The report area the steps write: `values` holds the read values (counted
// by *valueCount, stored up to `capacity`) and, after them, the result slots
// lib/ reserved for steps that have them.
struct ForkStepReport {
  uint32_t* values;
  uint32_t* valueCount;
  size_t capacity;
};

// Runs step `op` (one of ForkSigbusStepOp) with its slots s[1..5]; false if
// `op` is not one of them.
bool RunForkSigbusStep(int op, const double* s, const ForkStepReport& report);

}  // namespace uffd
