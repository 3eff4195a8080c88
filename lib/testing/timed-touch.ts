// Timed variant of touchPages() for benchmarks (bench/): the native thread
// records how long each access took (the fault round trip, when the page
// faults) and when it started and ended, and can be pinned to a CPU.
import os from 'node:os';
import { native } from '../native';
import { checkBoolean, checkInteger, checkObject } from '../validate';
import type { TouchOptions, TouchResult } from './index';

export interface TimedTouchOptions extends TouchOptions {
  /** Pin the touching thread to this CPU (default: not pinned). */
  cpu?: number;
}

export interface TimedTouchResult extends TouchResult {
  /** Microseconds each access took, in access order. */
  readonly latencies: Float64Array;
  /** When the thread started and finished touching (µs, CLOCK_MONOTONIC). */
  readonly start: number;
  readonly end: number;
}

/** touchPages() that also times every access (benchmarks; see bench/run.mjs). */
export function touchPagesTimed(address: number, length: number, options?: TimedTouchOptions): Promise<TimedTouchResult> {
  const opts = checkObject<TimedTouchOptions>('options', options);
  const start = checkInteger('address', address, 1);
  const bytes = checkInteger('length', length, 1);
  const stride = checkInteger('options.stride', opts.stride ?? 4096, 4);
  const value = checkInteger('options.value', opts.value ?? 0, 0, 0xffffffff);
  const write = opts.write === undefined ? false : checkBoolean('options.write', opts.write);
  const ref = opts.ref === undefined ? true : checkBoolean('options.ref', opts.ref);
  const cpu = opts.cpu === undefined ? -1 : checkInteger('options.cpu', opts.cpu, 0, os.availableParallelism() - 1);
  return native.touch(start, bytes, stride, write, value, ref, cpu, true);
}

/** Pins the calling thread (the JS thread, when called from JavaScript) to one CPU. */
export function pinThread(cpu: number): void {
  native.pinThread(checkInteger('cpu', cpu, 0, os.availableParallelism() - 1));
}
