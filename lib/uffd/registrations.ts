// Which ranges a userfaultfd has registered, with which modes and page size,
// so that every ioctl can be checked (alignment, bounds, mode) before the
// system call. Unregistering part of a range splits it, as the kernel splits
// the vma.
import type { IoctlName, RegisterMode, UnknownBit } from './features';

export interface Registration {
  readonly start: number;
  readonly end: number;
  readonly modes: ReadonlySet<RegisterMode>;
  readonly ioctls: ReadonlySet<IoctlName | UnknownBit>;
  readonly pageSize: number;
}

export class RegistrationSet {
  #ranges: Registration[] = [];

  get all(): readonly Registration[] {
    return this.#ranges;
  }

  add(r: Registration): void {
    this.remove(r.start, r.end);
    this.#ranges.push(r);
    this.#ranges.sort((a, b) => a.start - b.start);
  }

  /** Forgets [start, end), keeping the parts of registrations outside it. */
  remove(start: number, end: number): void {
    const kept: Registration[] = [];
    for (const r of this.#ranges) {
      if (r.end <= start || r.start >= end) {
        kept.push(r);
        continue;
      }
      if (r.start < start) kept.push({ ...r, end: start });
      if (r.end > end) kept.push({ ...r, start: end });
    }
    this.#ranges = kept;
  }

  /**
   * Moves what is registered in [from, from + length) to `to` (an mremap).
   * A registration that extends past the moved range is split, as the
   * kernel splits the vma: only the moved part goes.
   */
  move(from: number, to: number, length: number): void {
    const end = from + length;
    const moved: Registration[] = [];
    for (const r of this.#ranges) {
      const start = Math.max(r.start, from);
      const stop = Math.min(r.end, end);
      if (start < stop) moved.push({ ...r, start: start - from + to, end: stop - from + to });
    }
    this.remove(from, end);
    for (const r of moved) this.add(r);
  }

  /** Whether any registration overlaps [start, end). */
  overlaps(start: number, end: number): boolean {
    return this.#ranges.some((r) => r.start < end && r.end > start);
  }

  /** The registration that covers [start, start + length) entirely, if any. */
  covering(start: number, length: number): Registration | undefined {
    const end = start + length;
    // Adjacent registrations with the same modes count as one range.
    let cursor = start;
    let first: Registration | undefined;
    for (const r of this.#ranges) {
      if (r.end <= cursor || r.start > cursor) continue;
      first ??= r;
      if (r.pageSize !== first.pageSize) return undefined;
      cursor = r.end;
      if (cursor >= end) return first;
    }
    return undefined;
  }

  clone(): RegistrationSet {
    const copy = new RegistrationSet();
    copy.#ranges = [...this.#ranges];
    return copy;
  }
}
