// Test support, its own entry point (`userfaultfd/testing`): ways to raise
// faults off the JavaScript thread, and a forked child that produces fork,
// remap, remove and unmap events, for selftest-style suites.
import { native } from '../native';
import { checkBoolean, checkInteger, checkObject } from '../validate';

export interface TouchResult {
  /** The kernel thread id of the thread that touched the pages. */
  readonly tid: number;
  /** The first 32-bit word of every stride, as read after the access. */
  readonly values: Uint32Array;
}

export interface TouchOptions {
  /** Bytes between touches (default 4096). */
  stride?: number;
  /** Write `value + index` to each word before reading it back (default: read only). */
  write?: boolean;
  value?: number;
  /**
   * Keep the event loop alive until the thread has touched every page
   * (default true), as a pending fs call does. With false, a thread left
   * blocked in a fault nobody resolves does not hold the process open: the
   * loop ends, the userfaultfd is closed on 'exit', and the thread is woken.
   */
  ref?: boolean;
}

/**
 * Starts a native thread that touches [address, address + length) every
 * `stride` bytes. The promise settles when the thread has touched every
 * page: it may never settle if a fault is never resolved.
 */
export function touchPages(address: number, length: number, options?: TouchOptions): Promise<TouchResult> {
  const opts = checkObject<TouchOptions>('options', options);
  const start = checkInteger('address', address, 1);
  const bytes = checkInteger('length', length, 1);
  const stride = checkInteger('options.stride', opts.stride ?? 4096, 4);
  const value = checkInteger('options.value', opts.value ?? 0, 0, 0xffffffff);
  const write = opts.write === undefined ? false : checkBoolean('options.write', opts.write);
  const ref = opts.ref === undefined ? true : checkBoolean('options.ref', opts.ref);
  return native.touch(start, bytes, stride, write, value, ref);
}

/** The calling thread's kernel thread id (what pagefault events report as threadId). */
export function threadId(): number {
  return native.threadId();
}

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
