// The report area of a forkChild() program. The values of 'read' and 'write'
// steps (and 'readWriteBack') come first; a step that reports more than
// values owns a few words after them. How many values there are is known
// only once every step is encoded, so each step reserves its words here
// and fixUp() writes their offsets into the encoded program at the end.

/** The words one step owns in the report area. */
export interface ReservedWords<Op extends string = string> {
  readonly step: number;
  readonly op: Op;
  /** Which of the step's encoded slots holds the offset of its words. */
  readonly slotIndex: number;
  /** Words after the read values. */
  readonly offset: number;
  /** Records the step reports (e.g. one per stride), where that varies. */
  readonly records: number;
}

export class ResultArea {
  private readonly reservations: ReservedWords[] = [];
  private words = 0;
  private base = 0;

  /** Reserves `words` words for step `step`; its slot `slotIndex` will hold where they are. */
  reserve(step: number, op: string, slotIndex: number, words: number, records = 0): void {
    this.reservations.push({ step, op, slotIndex, offset: this.words, records });
    this.words += words;
  }

  /** Words reserved after the read values. */
  get reserved(): number {
    return this.words;
  }

  /** Points each step at its words, now that the read values' count (`base`) is known. */
  fixUp(encoded: Float64Array, slotsPerStep: number, base: number): void {
    this.base = base;
    for (const r of this.reservations) encoded[r.step * slotsPerStep + r.slotIndex] = base + r.offset;
  }

  /** Index in the report of the first word of `r` (after fixUp()). */
  wordOf(r: ReservedWords): number {
    return this.base + r.offset;
  }

  /** The reservations of steps `op`, in step order. */
  of<Op extends string>(op: Op): ReservedWords<Op>[] {
    return this.reservations.filter((r): r is ReservedWords<Op> => r.op === op);
  }

  /** The reservation of step `step`, if it made one. */
  forStep(step: number): ReservedWords | undefined {
    return this.reservations.find((r) => r.step === step);
  }

  has(op: string): boolean {
    return this.reservations.some((r) => r.op === op);
  }
}
