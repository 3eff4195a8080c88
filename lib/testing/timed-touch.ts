// Timed variant of touchPages() for benchmarks (bench/): the native thread
// records how long each access took (the fault round trip, when the page
// faults) and when it started and ended, and can be pinned to a CPU.
import os from 'node:os';
import { native } from '../native';
import { checkInteger } from '../validate';
import { touchArguments } from './touch-pages';
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
  const args = touchArguments(address, length, options);
  const opts = options as TimedTouchOptions; // an object: touchArguments() checked it
  const cpu = opts?.cpu === undefined ? -1 : checkInteger('options.cpu', opts.cpu, 0, os.availableParallelism() - 1);
  return native.touch(...args, cpu, true);
}

/** Pins the calling thread (the JS thread, when called from JavaScript) to one CPU. */
export function pinThread(cpu: number): void {
  native.pinThread(checkInteger('cpu', cpu, 0, os.availableParallelism() - 1));
}
