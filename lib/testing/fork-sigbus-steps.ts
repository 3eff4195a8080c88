// Steps of forkChild() with ops 40+ (native/testing/fork_sigbus_steps.cc):
// reads that survive SIGBUS, read-and-write-back, and a zero scan, for the
// kernel's sigbus and events tests run in a forked child. 'readWriteBack'
// reports into the read values like 'read'; the other two own words of the
// report area (fork-result-area.ts). Kept apart from fork-child.ts: this
// file checks, encodes and decodes these steps only.
import { checkInteger } from '../validate';
import { PAGE_SIZE } from '../memory/constants';
import type { ResultArea } from './fork-result-area';

/**
 * Reads the first 32-bit word of every `stride` bytes (default 4096),
 * catching SIGBUS: a page that raises it is counted and skipped. See
 * ForkChildResult.sigbusReads.
 */
export interface ReadSigbusStep {
  op: 'readSigbus';
  address: number;
  length: number;
  stride?: number;
}
/**
 * Reads the first 32-bit word of every `stride` bytes (default 4096) and
 * writes the same value back (a WP fault on a write-protected page); reports
 * each value read, as 'read' does.
 */
export interface ReadWriteBackStep {
  op: 'readWriteBack';
  address: number;
  length: number;
  stride?: number;
}
/** Reads every 32-bit word of the range; see ForkChildResult.zeroScans. */
export interface ScanZeroStep {
  op: 'scanZero';
  address: number;
  length: number;
}
export type SigbusStep = ReadSigbusStep | ReadWriteBackStep | ScanZeroStep;

/** What a 'readSigbus' step saw, per stride (page). */
export interface SigbusReadReport {
  /** The step's index in the program. */
  readonly step: number;
  /** The first word as read, 0 where a SIGBUS was taken. */
  readonly values: Uint32Array;
  /** 1 where the read raised SIGBUS (the page was then skipped). */
  readonly signals: Uint32Array;
  /** si_code of the signal, 0 if none. */
  readonly codes: Uint32Array;
  /** si_addr of the signal, 0 if none. */
  readonly faultAddresses: Float64Array;
}

/** What a 'scanZero' step found. */
export interface ZeroScanReport {
  readonly step: number;
  /** 32-bit words that were not zero. */
  readonly nonzeroWords: number;
  /** Byte offset of the first of them, -1 if none. */
  readonly firstNonzeroOffset: number;
}

export const SIGBUS_STEP_OPS = { readSigbus: 40, readWriteBack: 41, scanZero: 42 } as const;
const RECORD = 5;

/** Encodes the SIGBUS steps of one program, reserving their words in the program's result area. */
export class SigbusSteps {
  constructor(private readonly area: ResultArea) {}

  static handles(op: string): op is keyof typeof SIGBUS_STEP_OPS {
    return Object.hasOwn(SIGBUS_STEP_OPS, op);
  }

  /**
   * Checks step `i` and writes its slots (but the result offset). Returns
   * what its failure names and the read values it adds.
   */
  encode(
    i: number,
    op: keyof typeof SIGBUS_STEP_OPS,
    s: Record<string, unknown>,
    at: (slot: number, value: number) => void,
  ): { syscall: string; address: number; length: number; values: number } {
    at(0, SIGBUS_STEP_OPS[op]);
    const address = checkInteger(`steps[${i}].address`, s.address, 1);
    const length = checkInteger(`steps[${i}].length`, s.length, 1);
    at(1, address);
    at(2, length);
    if (op === 'scanZero') {
      this.area.reserve(i, op, 3, 3);
      return { syscall: 'scanZero', address, length, values: 0 };
    }
    const stride = checkInteger(`steps[${i}].stride`, s.stride ?? PAGE_SIZE, 4);
    at(3, stride);
    const strides = Math.ceil(length / stride);
    if (op === 'readWriteBack') return { syscall: op, address, length, values: strides };
    this.area.reserve(i, op, 4, 1 + RECORD * strides, strides);
    return { syscall: op, address, length, values: 0 };
  }

  /** The 'readSigbus' reports, in step order, cut to the strides the child got through. */
  sigbusReads(slots: Uint32Array): SigbusReadReport[] {
    const out: SigbusReadReport[] = [];
    for (const r of this.area.of('readSigbus')) {
      const w = this.area.wordOf(r);
      const done = Math.min(slots[w], r.records);
      const report = {
        step: r.step,
        values: new Uint32Array(done),
        signals: new Uint32Array(done),
        codes: new Uint32Array(done),
        faultAddresses: new Float64Array(done),
      };
      for (let k = 0; k < done; k++) {
        const at = w + 1 + k * RECORD;
        report.values[k] = slots[at];
        report.signals[k] = slots[at + 1];
        report.codes[k] = slots[at + 2];
        report.faultAddresses[k] = slots[at + 4] * 2 ** 32 + slots[at + 3];
      }
      out.push(report);
    }
    return out;
  }

  /** The 'scanZero' reports of the steps that completed, in step order. */
  zeroScans(slots: Uint32Array): ZeroScanReport[] {
    const out: ZeroScanReport[] = [];
    for (const r of this.area.of('scanZero')) {
      const w = this.area.wordOf(r);
      if (slots[w] !== 1) continue;
      out.push({ step: r.step, nonzeroWords: slots[w + 1], firstNonzeroOffset: slots[w + 2] === 0xffffffff ? -1 : slots[w + 2] });
    }
    return out;
  }

  get hasReads(): boolean {
    return this.area.has('readSigbus');
  }

  get hasScans(): boolean {
    return this.area.has('scanZero');
  }
}
