// Steps of forkChild() that report into result words (ops 20+): the child
// reads its own pagemap entry, or takes and drops a long-term pin. Each such
// step owns a few words of the report area (fork-result-area.ts), so its
// result never mixes with the read values. Kept apart from fork-child.ts:
// this file checks, encodes and decodes these steps only.
import { checkInteger } from '../validate';
import { decodePagemapEntry, type PagemapEntry } from '../memory/pagemap';
import { MAX_LONGTERM_PIN_BYTES } from './longterm-pin';
import type { ResultArea } from './fork-result-area';

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

export const PAGEMAP_PIN_OPS = { pagemap: 20, pin: 21, unpin: 22 } as const;
const WORDS = { pagemap: 3, pin: 1, unpin: 1 } as const;
/** A slot's first word when its step completed. */
const DONE = 3;
/** Pins a child may hold at once (native/testing/fork_child.cc). */
export const MAX_CHILD_PINS = 16;

export interface FailureInfo {
  syscall: string;
  address?: number;
  length?: number;
}

/** Encodes the pagemap and pin steps of one program, reserving their words in the program's result area. */
export class PagemapPinSteps {
  private pinsHeld = 0;

  constructor(private readonly area: ResultArea) {}

  static handles(op: string): op is keyof typeof PAGEMAP_PIN_OPS {
    return Object.hasOwn(PAGEMAP_PIN_OPS, op);
  }

  /** Checks step `i` and writes its slots (but the result offset); returns what its failure names. */
  encode(i: number, op: keyof typeof PAGEMAP_PIN_OPS, s: Record<string, unknown>, at: (slot: number, value: number) => void): FailureInfo {
    at(0, PAGEMAP_PIN_OPS[op]);
    const reserve = (slotIndex: number) => this.area.reserve(i, op, slotIndex, WORDS[op]);
    switch (op) {
      case 'pagemap': {
        const address = checkInteger(`steps[${i}].address`, s.address, 1);
        at(1, address);
        reserve(2);
        return { syscall: 'pread', address };
      }
      case 'pin': {
        const address = checkInteger(`steps[${i}].address`, s.address, 1);
        const length = checkInteger(`steps[${i}].length`, s.length, 1, MAX_LONGTERM_PIN_BYTES);
        if (++this.pinsHeld > MAX_CHILD_PINS) throw new RangeError(`steps[${i}]: a child holds at most ${MAX_CHILD_PINS} pins at once`);
        at(1, address);
        at(2, length);
        reserve(3);
        return { syscall: 'io_uring_register', address, length };
      }
      case 'unpin':
        if (this.pinsHeld === 0) throw new RangeError(`steps[${i}]: 'unpin' without a pin held (no earlier 'pin' step left)`);
        this.pinsHeld--;
        reserve(1);
        return { syscall: 'io_uring_register' };
    }
  }

  /** The failed call's name, from how far the step got (its first result word). */
  failedSyscall(step: number, slots: Uint32Array): string | undefined {
    const r = this.area.forStep(step);
    if (!r) return undefined;
    const stage = slots[this.area.wordOf(r)];
    if (r.op === 'pagemap') return stage === 0 ? 'open' : 'pread';
    if (r.op === 'pin') return stage === 1 ? 'io_uring_setup' : 'io_uring_register';
    return undefined;
  }

  /** The pagemap entries the child read, in step order (only those whose step ran). */
  pagemap(slots: Uint32Array): PagemapEntry[] {
    const out: PagemapEntry[] = [];
    for (const r of this.area.of('pagemap')) {
      const w = this.area.wordOf(r);
      if (slots[w] !== DONE) continue;
      out.push(decodePagemapEntry((BigInt(slots[w + 2]) << 32n) | BigInt(slots[w + 1])));
    }
    return out;
  }

  get hasPagemap(): boolean {
    return this.area.has('pagemap');
  }
}
