// Test support, its own entry point (`userfaultfd/testing`), for
// selftest-style suites: ways to raise faults off the JavaScript thread
// (native threads, Workers, a forked child that also produces fork, remap,
// remove and unmap events), long-term pins, a raw uffd for tests of the
// kernel interface, and a uffd-stress equivalent.
export { touchPages, threadId } from './touch-pages';
export type { TouchOptions, TouchResult } from './touch-pages';
export { touchInWorker } from './worker-touch';
export type { WorkerTouch, WorkerTouchOptions } from './worker-touch';
export { forkChild, FORK_STEP_FAILED_EXIT } from './fork-child';
export type {
  ForkStep,
  ReadStep,
  WriteStep,
  MadviseStep,
  MremapStep,
  MunmapStep,
  RaiseStep,
  ForkChildOptions,
  ForkChildResult,
  ForkedChild,
} from './fork-child';
export type { PagemapStep, PinStep, UnpinStep, ResultStep } from './fork-pagemap-pin-steps';
export type { ReadSigbusStep, ReadWriteBackStep, ScanZeroStep, SigbusReadReport, ZeroScanReport } from './fork-sigbus-steps';

export { runStress, stressHugetlbPagesNeeded, freeHugetlbPages2M, STRESS_MEMORY_TYPES } from './stress';
export type { StressOptions, StressResult, BounceStats, StressMemory } from './stress';

export { touchPagesTimed, pinThread } from './timed-touch';
export type { TimedTouchOptions, TimedTouchResult } from './timed-touch';
export { longtermPin, probeLongtermPin, MAX_LONGTERM_PIN_BYTES } from './longterm-pin';
export type { LongtermPin, LongtermPinSupport } from './longterm-pin';
export { rawUffd, RAW_UFFD_FLAGS, UFFD_API } from './raw-uffd';
export type { RawUffd, RawOpenOptions, RawErrno, RawApiResult, RawRegisterResult } from './raw-uffd';
export { madviseInThread } from './madvise-thread';
export type { MadviseThread, MadviseResult, MadviseThreadOptions } from './madvise-thread';

export { touchCatchingSigbus, SIGBUS_CODES } from './sigbus-touch';
export type { SigbusTouchOptions, SigbusTouchResult, SigbusSignal } from './sigbus-touch';
