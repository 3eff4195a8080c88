// Test support: fork a child process that runs a short program on memory
// (touch pages, madvise, mremap, munmap, raise a signal) and exits. With
// UFFD_FEATURE_EVENT_FORK enabled on a registered range this produces a
// 'fork' event, and the child's own remap/remove/unmap events and page
// faults then arrive on the forked userfaultfd.
//
// The child is forked from native code and runs only async-signal-safe
// calls (native/testing/fork_child.cc); this file validates and encodes the
// program.
import { constants } from 'node:os';
import { native } from '../native';
import { errnoError, type UffdError } from '../errors';
import { checkAligned, checkInteger, checkObject, checkOneOf, describe } from '../validate';
import { MADV, MREMAP, PAGE_SIZE, type Advice } from '../memory/constants';
import type { PagemapEntry } from '../memory/pagemap';
import { PAGEMAP_PIN_OPS, PagemapPinSteps, type FailureInfo, type ResultStep } from './fork-pagemap-pin-steps';
import { ResultArea } from './fork-result-area';
import { SIGBUS_STEP_OPS, SigbusSteps, type SigbusReadReport, type SigbusStep, type ZeroScanReport } from './fork-sigbus-steps';

/** Reads the first 32-bit word of every `stride` bytes (default 4096) and reports it. */
export interface ReadStep {
  op: 'read';
  address: number;
  length: number;
  stride?: number;
}
/** Writes `value + index` (default value 0) to the first word of every stride, reads it back and reports it. */
export interface WriteStep {
  op: 'write';
  address: number;
  length: number;
  stride?: number;
  value?: number;
}
export interface MadviseStep {
  op: 'madvise';
  address: number;
  length: number;
  advice: Advice;
}
/** mremap(): to `newAddress` exactly (MREMAP_FIXED), or resized where it is / moved if `mayMove` (default true). */
export interface MremapStep {
  op: 'mremap';
  address: number;
  length: number;
  /** Default: `length`. */
  newLength?: number;
  newAddress?: number;
  mayMove?: boolean;
}
export interface MunmapStep {
  op: 'munmap';
  address: number;
  length: number;
}
/** Sends the child a signal with its default disposition (most end the child). */
export interface RaiseStep {
  op: 'raise';
  signal: NodeJS.Signals | number;
}

export type ForkStep = ReadStep | WriteStep | MadviseStep | MremapStep | MunmapStep | RaiseStep | ResultStep | SigbusStep;

export interface ForkChildOptions {
  /** The child's exit code once every step ran (default 0). */
  exitCode?: number;
}

export interface ForkChildResult {
  /** The exit code, or null if a signal ended the child. */
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Every value read by 'read' and 'write' steps, in order, up to the moment the child ended. */
  readonly values: Uint32Array;
  /**
   * The step whose system call failed, and its errno error (`code`, `errno`,
   * `syscall`, `address`, `length`). The child stops there and exits with
   * code FORK_STEP_FAILED_EXIT (125).
   */
  readonly failedStep?: { readonly index: number; readonly error: UffdError };
  /** With 'pagemap' steps: the entries the child read of its own memory, in step order (those that ran). */
  readonly pagemap?: readonly PagemapEntry[];
  /** With 'readSigbus' steps: what each saw, in step order (cut where the child ended). */
  readonly sigbusReads?: readonly SigbusReadReport[];
  /** With 'scanZero' steps: the scans that completed, in step order. */
  readonly zeroScans?: readonly ZeroScanReport[];
}

export interface ForkedChild {
  readonly pid: number;
  /** Settles when the child has exited (and been reaped). */
  readonly exited: Promise<ForkChildResult>;
  /** Sends a signal (default SIGKILL); false once the child has exited. */
  kill(signal?: NodeJS.Signals | number): boolean;
}

/** Exit code of a child whose step failed. */
export const FORK_STEP_FAILED_EXIT = 125;

const OPS = { read: 1, write: 2, madvise: 3, mremap: 4, munmap: 5, raise: 6 } as const;
const SLOTS = 6;
const MAX_VALUES = 1 << 24;

const signalNames = new Map<number, NodeJS.Signals>();
for (const [name, value] of Object.entries(constants.signals)) {
  if (!signalNames.has(value)) signalNames.set(value, name as NodeJS.Signals);
}

function signalNumber(name: string, value: unknown): number {
  if (typeof value === 'string') {
    const n = (constants.signals as Record<string, number | undefined>)[value];
    if (n === undefined) throw new TypeError(`${name} must be a signal name such as 'SIGTERM' or a number (got ${describe(value)})`);
    return n;
  }
  return checkInteger(name, value, 1, 64);
}

/**
 * Forks a child that runs `steps` in order on its copy of this process's
 * memory, then exits with options.exitCode. Returns at once with the pid.
 *
 * A step that touches a registered page blocks the child until the fault
 * is resolved: through the forked userfaultfd with EVENT_FORK, otherwise
 * the child's copy of the range is not registered at all. If the
 * environment ends first, the child is killed.
 */
export function forkChild(steps: readonly ForkStep[], options?: ForkChildOptions): ForkedChild {
  if (!Array.isArray(steps)) throw new TypeError(`steps must be an array of steps (got ${describe(steps)})`);
  const opts = checkObject<ForkChildOptions>('options', options);
  const exitCode = opts.exitCode === undefined ? 0 : checkInteger('options.exitCode', opts.exitCode, 0, 255);
  const encoded = new Float64Array(steps.length * SLOTS);
  // What each step's error names, captured now: the caller may reuse the array.
  const failures: FailureInfo[] = [];
  let capacity = 0;
  const resultArea = new ResultArea();
  const pagemapPinSteps = new PagemapPinSteps(resultArea);
  const sigbusSteps = new SigbusSteps(resultArea);
  steps.forEach((step, i) => {
    const at = (slot: number, value: number) => (encoded[i * SLOTS + slot] = value);
    const s = checkObject<ForkStep & Record<string, unknown>>(`steps[${i}]`, step ?? null);
    const allOps = [...Object.keys(OPS), ...Object.keys(PAGEMAP_PIN_OPS), ...Object.keys(SIGBUS_STEP_OPS)] as (keyof typeof OPS | keyof typeof PAGEMAP_PIN_OPS | keyof typeof SIGBUS_STEP_OPS)[];
    const anyOp = checkOneOf(`steps[${i}].op`, s.op, allOps);
    if (PagemapPinSteps.handles(anyOp)) {
      failures.push(pagemapPinSteps.encode(i, anyOp, s, at));
      return;
    }
    if (SigbusSteps.handles(anyOp)) {
      const { values, ...failure } = sigbusSteps.encode(i, anyOp, s, at);
      failures.push(failure);
      capacity += values;
      if (capacity + resultArea.reserved > MAX_VALUES) throw new RangeError(`steps read more than ${MAX_VALUES} values`);
      return;
    }
    const op = anyOp as keyof typeof OPS;
    at(0, OPS[op]);
    if (op === 'raise') {
      at(1, signalNumber(`steps[${i}].signal`, s.signal));
      failures.push({ syscall: 'kill' });
      return;
    }
    const address = checkInteger(`steps[${i}].address`, s.address, 1);
    const length = checkInteger(`steps[${i}].length`, s.length, 1);
    failures.push({ syscall: op, address, length });
    at(1, address);
    at(2, length);
    switch (op) {
      case 'read':
      case 'write': {
        const stride = checkInteger(`steps[${i}].stride`, s.stride ?? PAGE_SIZE, 4);
        at(3, stride);
        if (op === 'write') at(4, checkInteger(`steps[${i}].value`, s.value ?? 0, 0, 0xffffffff));
        capacity += Math.ceil(length / stride);
        if (capacity > MAX_VALUES) throw new RangeError(`steps read more than ${MAX_VALUES} values`);
        break;
      }
      case 'madvise':
        checkAligned(`steps[${i}].address`, address, PAGE_SIZE);
        at(3, MADV[checkOneOf(`steps[${i}].advice`, s.advice, Object.keys(MADV) as Advice[])]);
        break;
      case 'mremap': {
        checkAligned(`steps[${i}].address`, address, PAGE_SIZE);
        const newLength = s.newLength === undefined ? length : checkInteger(`steps[${i}].newLength`, s.newLength, 1);
        let flags = s.mayMove === false ? 0 : MREMAP.MAYMOVE;
        let newAddress = 0;
        if (s.newAddress !== undefined) {
          newAddress = checkInteger(`steps[${i}].newAddress`, s.newAddress, 1);
          checkAligned(`steps[${i}].newAddress`, newAddress, PAGE_SIZE);
          flags |= MREMAP.MAYMOVE | MREMAP.FIXED;
        }
        at(3, newLength);
        at(4, flags);
        at(5, newAddress);
        break;
      }
      case 'munmap':
        checkAligned(`steps[${i}].address`, address, PAGE_SIZE);
        break;
    }
  });

  // Result words (pagemap, pins, SIGBUS reads, zero scans) follow the read values.
  if (capacity + resultArea.reserved > MAX_VALUES) throw new RangeError(`steps read more than ${MAX_VALUES} values`);
  resultArea.fixUp(encoded, SLOTS, capacity);
  const [pid, exited, kill] = native.forkChild(encoded, capacity + resultArea.reserved, exitCode);
  return {
    pid,
    exited: exited.then((r) => {
      const result: { -readonly [K in keyof ForkChildResult]: ForkChildResult[K] } = {
        exitCode: r.exitCode,
        signal: r.signal === null ? null : (signalNames.get(r.signal) ?? (`SIG${r.signal}` as NodeJS.Signals)),
        values: r.values,
      };
      if (r.failedStep >= 0) {
        const f = failures[r.failedStep];
        const syscall = pagemapPinSteps.failedSyscall(r.failedStep, r.slots) ?? f.syscall;
        result.failedStep = { index: r.failedStep, error: errnoError(r.error, syscall, f.address, f.length) };
      }
      if (pagemapPinSteps.hasPagemap) result.pagemap = pagemapPinSteps.pagemap(r.slots);
      if (sigbusSteps.hasReads) result.sigbusReads = sigbusSteps.sigbusReads(r.slots);
      if (sigbusSteps.hasScans) result.zeroScans = sigbusSteps.zeroScans(r.slots);
      return result;
    }),
    kill: (signal = 'SIGKILL') => kill(signalNumber('signal', signal)),
  };
}
