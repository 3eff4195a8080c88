// Test support, its own entry point (`userfaultfd/testing`): ways to raise
// faults off the JavaScript thread, for selftest-style suites.
import { native } from '../native';
import { checkInteger } from '../validate';

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
}

/**
 * Starts a native thread that touches [address, address + length) every
 * `stride` bytes. The promise settles when the thread has touched every
 * page: it may never settle if a fault is never resolved.
 */
export function touchPages(address: number, length: number, options: TouchOptions = {}): Promise<TouchResult> {
  checkInteger('address', address, 1);
  checkInteger('length', length, 1);
  const stride = checkInteger('options.stride', options.stride ?? 4096, 4);
  const value = checkInteger('options.value', options.value ?? 0, 0, 0xffffffff);
  return native.touch(address, length, stride, options.write === true, value);
}

/** The calling thread's kernel thread id (what pagefault events report as threadId). */
export function threadId(): number {
  return native.threadId();
}

export { touchInWorker } from './worker-touch';
export type { WorkerTouch, WorkerTouchOptions } from './worker-touch';

export { runStress, stressHugetlbPagesNeeded, freeHugetlbPages2M, STRESS_MEMORY_TYPES } from './stress';
export type { StressOptions, StressResult, BounceStats, StressMemory } from './stress';
