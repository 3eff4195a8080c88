// Steps of forkChild() with ops 40+ (native/testing/fork_sigbus_steps.cc):
// reads that survive SIGBUS, read-and-write-back, and a zero scan, for the
// kernel's sigbus and events tests run in a forked child. 'readWriteBack'
// reports into the read values like 'read'; the other two own result words
// of the report area, placed after the read values. Kept apart from
// fork-child.ts: this file checks, encodes and decodes these steps only.
import { checkInteger } from '../validate';
import { PAGE_SIZE } from '../memory/constants';

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

interface Placed {
  step: number;
  op: 'readSigbus' | 'scanZero';
  slotIndex: number; // which of the step's encoded slots gets the word offset
  offset: number; // words after the read values
  strides: number;
}

/** Encodes the SIGBUS steps of one program; read values come first, so result words are fixed up at the end. */
export class SigbusSteps {
  private readonly placed: Placed[] = [];
  private words = 0;

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
      this.placed.push({ step: i, op, slotIndex: 3, offset: this.words, strides: 0 });
      this.words += 3;
      return { syscall: 'scanZero', address, length, values: 0 };
    }
    const stride = checkInteger(`steps[${i}].stride`, s.stride ?? PAGE_SIZE, 4);
    at(3, stride);
    const strides = Math.ceil(length / stride);
    if (op === 'readWriteBack') return { syscall: op, address, length, values: strides };
    this.placed.push({ step: i, op, slotIndex: 4, offset: this.words, strides });
    this.words += 1 + RECORD * strides;
    return { syscall: op, address, length, values: 0 };
  }

  /** Result words to reserve after the read values. */
  get reserved(): number {
    return this.words;
  }

  /** Points each step at its result words, now that the read values' count is known. */
  fixUp(encoded: Float64Array, slotsPerStep: number, base: number): void {
    for (const p of this.placed) encoded[p.step * slotsPerStep + p.slotIndex] = base + p.offset;
  }

  /** The 'readSigbus' reports, in step order, cut to the strides the child got through. */
  sigbusReads(base: number, slots: Uint32Array): SigbusReadReport[] {
    const out: SigbusReadReport[] = [];
    for (const p of this.placed) {
      if (p.op !== 'readSigbus') continue;
      const w = base + p.offset;
      const done = Math.min(slots[w], p.strides);
      const report = {
        step: p.step,
        values: new Uint32Array(done),
        signals: new Uint32Array(done),
        codes: new Uint32Array(done),
        faultAddresses: new Float64Array(done),
      };
      for (let k = 0; k < done; k++) {
        const r = w + 1 + k * RECORD;
        report.values[k] = slots[r];
        report.signals[k] = slots[r + 1];
        report.codes[k] = slots[r + 2];
        report.faultAddresses[k] = slots[r + 4] * 2 ** 32 + slots[r + 3];
      }
      out.push(report);
    }
    return out;
  }

  /** The 'scanZero' reports of the steps that completed, in step order. */
  zeroScans(base: number, slots: Uint32Array): ZeroScanReport[] {
    const out: ZeroScanReport[] = [];
    for (const p of this.placed) {
      if (p.op !== 'scanZero') continue;
      const w = base + p.offset;
      if (slots[w] !== 1) continue;
      out.push({ step: p.step, nonzeroWords: slots[w + 1], firstNonzeroOffset: slots[w + 2] === 0xffffffff ? -1 : slots[w + 2] });
    }
    return out;
  }

  get hasReads(): boolean {
    return this.placed.some((p) => p.op === 'readSigbus');
  }

  get hasScans(): boolean {
    return this.placed.some((p) => p.op === 'scanZero');
  }
}
