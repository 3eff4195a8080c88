// Steps of forkChild() that report into result slots (ops 20+): the child
// reads its own pagemap entry, or takes and drops a long-term pin. Each such
// step owns a few words of the report area, placed after the values of read
// and write steps, so its result never mixes with theirs. Kept apart from
// fork-child.ts: this file encodes, checks and decodes these steps only.
import { checkInteger } from '../validate';
import { decodePagemapEntry, type PagemapEntry } from '../memory/pagemap';
import { MAX_LONGTERM_PIN_BYTES } from './longterm-pin';

/** Reads the child's own /proc/self/pagemap entry for the 4K page at `address`; see ForkChildResult.pagemap. */
export interface PagemapStep {
  op: 'pagemap';
  address: number;
}
/**
 * Takes a long-term pin on [address, address + length), as longtermPin()
 * does (io_uring fixed buffers: FOLL_LONGTERM | FOLL_WRITE), held until an
 * 'unpin' step or the child's exit. On a write-protected page of a range
 * the child's userfaultfd registered (EVENT_FORK), it raises a WP fault there first.
 */
export interface PinStep {
  op: 'pin';
  address: number;
  length: number;
}
/** Releases the most recent pin the child still holds. */
export interface UnpinStep {
  op: 'unpin';
}
export type ResultStep = PagemapStep | PinStep | UnpinStep;

export const RESULT_OPS = { pagemap: 20, pin: 21, unpin: 22 } as const;
const WORDS = { pagemap: 3, pin: 1, unpin: 1 } as const;
/** A slot's first word when its step completed. */
const DONE = 3;
/** Pins a child may hold at once (native/testing/fork_child.cc). */
export const MAX_CHILD_PINS = 16;

interface Placed {
  step: number;
  op: keyof typeof RESULT_OPS;
  slotIndex: number; // which of the step's encoded slots gets the word offset
  offset: number; // words after the read values
}

export interface FailureInfo {
  syscall: string;
  address?: number;
  length?: number;
}

/** Encodes the result steps of one program; read values come first, so slots are fixed up at the end. */
export class ResultSteps {
  private readonly placed: Placed[] = [];
  private words = 0;
  private pinsHeld = 0;

  static handles(op: string): op is keyof typeof RESULT_OPS {
    return op in RESULT_OPS;
  }

  /** Checks step `i` and writes its slots (but the result slot); returns what its failure names. */
  encode(i: number, op: keyof typeof RESULT_OPS, s: Record<string, unknown>, at: (slot: number, value: number) => void): FailureInfo {
    at(0, RESULT_OPS[op]);
    const place = (slotIndex: number) => {
      this.placed.push({ step: i, op, slotIndex, offset: this.words });
      this.words += WORDS[op];
    };
    switch (op) {
      case 'pagemap': {
        const address = checkInteger(`steps[${i}].address`, s.address, 1);
        at(1, address);
        place(2);
        return { syscall: 'pread', address };
      }
      case 'pin': {
        const address = checkInteger(`steps[${i}].address`, s.address, 1);
        const length = checkInteger(`steps[${i}].length`, s.length, 1, MAX_LONGTERM_PIN_BYTES);
        if (++this.pinsHeld > MAX_CHILD_PINS) throw new RangeError(`steps[${i}]: a child holds at most ${MAX_CHILD_PINS} pins at once`);
        at(1, address);
        at(2, length);
        place(3);
        return { syscall: 'io_uring_register', address, length };
      }
      case 'unpin':
        if (this.pinsHeld === 0) throw new RangeError(`steps[${i}]: 'unpin' without a pin held (no earlier 'pin' step left)`);
        this.pinsHeld--;
        place(1);
        return { syscall: 'io_uring_register' };
    }
  }

  /** Result words to reserve after the read values. */
  get reserved(): number {
    return this.words;
  }

  /** Points each result step at its words, now that the read values' count is known. */
  fixUp(encoded: Float64Array, slotsPerStep: number, base: number): void {
    for (const p of this.placed) encoded[p.step * slotsPerStep + p.slotIndex] = base + p.offset;
  }

  /** The failed call's name, from how far the step got (its first result word). */
  failedSyscall(step: number, base: number, slots: Uint32Array): string | undefined {
    const p = this.placed.find((x) => x.step === step);
    if (!p) return undefined;
    const stage = slots[base + p.offset];
    if (p.op === 'pagemap') return stage === 0 ? 'open' : 'pread';
    if (p.op === 'pin') return stage === 1 ? 'io_uring_setup' : 'io_uring_register';
    return undefined;
  }

  /** The pagemap entries the child read, in step order (only those whose step ran). */
  pagemap(base: number, slots: Uint32Array): PagemapEntry[] {
    const out: PagemapEntry[] = [];
    for (const p of this.placed) {
      if (p.op !== 'pagemap') continue;
      const w = base + p.offset;
      if (slots[w] !== DONE) continue;
      out.push(decodePagemapEntry((BigInt(slots[w + 2]) << 32n) | BigInt(slots[w + 1])));
    }
    return out;
  }

  get hasPagemap(): boolean {
    return this.placed.some((p) => p.op === 'pagemap');
  }
}
