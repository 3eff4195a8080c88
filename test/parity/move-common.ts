// The body shared by uffd-unit-tests "move", "move-pmd" and
// "move-pmd-split" (uffd_move_test_common): every missing fault on dst is
// resolved by UFFDIO_MOVE (ALLOW_SRC_HOLES) of one chunk from the same offset
// of src. The source must hold its data before the move, dst must hold it
// after, the source must read as zeros afterwards, and there must be exactly
// one missing fault per chunk and no minor fault.
//
// For 2 MiB chunks only the 2 MiB-aligned part of each area is used, and one
// chunk fewer when either area is not aligned, as the kernel test does.
import { expect } from 'vitest';
import { PAGE_SIZE } from '../../lib/index';
import type { Advice } from '../../lib/index';
import { serveFaults, type CaseContext } from './parity-case';

/** First word of every 32-bit word of src page i (the kernel uses a counter of 1 per page). */
const SEED = 0x5eed0000;

export interface MoveCase {
  chunk: number;
  /** madvise of src before it is populated (the kernel's post_alloc hook). */
  srcAdvice: Advice;
  /** madvise of dst before the test (move-pmd, move-pmd-split). */
  dstAdvice?: Advice;
}

const alignUp = (n: number, to: number): number => Math.ceil(n / to) * to;

export async function moveCase({ areas, uffd, touchSplit }: CaseContext, { chunk, srcAdvice, dstAdvice }: MoveCase): Promise<void> {
  const { src, dst, nrPages } = areas;
  src.madvise(srcAdvice);
  // Fill src page by page: every word of page i holds SEED + i.
  const words = new Uint32Array(src.arrayBuffer());
  const perPage = PAGE_SIZE / 4;
  for (let i = 0; i < nrPages; i++) words.fill(SEED + i, i * perPage, (i + 1) * perPage);
  // Prevent source pages from being mapped more than once (as the kernel test).
  src.madvise('DONTFORK');
  if (dstAdvice) dst.madvise(dstAdvice);
  expect(uffd.register(dst, ['missing']).has('MOVE')).toBe(true);

  const stepSize = chunk / PAGE_SIZE;
  let stepCount = nrPages / stepSize;
  let srcStart = src.address;
  let dstStart = dst.address;
  if (chunk > PAGE_SIZE) {
    srcStart = alignUp(src.address, chunk);
    dstStart = alignUp(dst.address, chunk);
    if (srcStart !== src.address || dstStart !== dst.address) stepCount--;
  }
  const srcOffs = (srcStart - src.address) / PAGE_SIZE;
  const dstOffs = (dstStart - dst.address) / PAGE_SIZE;
  const length = stepCount * chunk;

  const expectSrcPages = (first: number, count: number, value: (i: number) => number, what: string): void => {
    for (let i = first; i < first + count; i++) {
      const at = (srcStart - src.address) / 4 + i * perPage;
      const v = value(i);
      if (words[at] !== v || words[at + perPage - 1] !== v) {
        expect.fail(`${what}: src page ${srcOffs + i} holds 0x${words[at].toString(16)}, expected 0x${v.toString(16)}`);
      }
    }
  };

  let moves = 0;
  const touched = touchSplit(dstStart, length, chunk, chunk === PAGE_SIZE ? 4 : 2);
  const counts = await serveFaults(uffd, touched, (fault) => {
    if (fault.write || fault.wp || fault.minor) expect.fail(`unexpected fault flags ${fault.flags} at 0x${fault.address.toString(16)}`);
    const offset = Math.floor((fault.address - dstStart) / chunk) * chunk;
    const first = offset / PAGE_SIZE;
    // The source holds its data before the move...
    expectSrcPages(first, stepSize, (i) => SEED + srcOffs + i, 'before the move');
    const r = uffd.move(dstStart + offset, srcStart + offset, chunk, { allowSrcHoles: true });
    if (r.status !== 'complete' || r.bytes !== chunk) expect(r).toEqual({ bytes: chunk, status: 'complete' });
    moves++;
  });
  const values = await touched;
  expect(counts).toEqual({ missing: stepCount, minor: 0, wp: 0 });
  expect(moves).toBe(stepCount);

  // ... dst holds it after (the kernel's dst_offs: dst page i held what src page i held).
  expect(values.length).toBe(length / PAGE_SIZE);
  const dstWords = new Uint32Array(dst.arrayBuffer(dstStart - dst.address, length));
  for (let i = 0; i < length / PAGE_SIZE; i++) {
    const v = SEED + srcOffs + i;
    if (values[i] !== v || dstWords[i * perPage] !== v || dstWords[(i + 1) * perPage - 1] !== v) {
      expect.fail(`dst page ${dstOffs + i}: read 0x${values[i].toString(16)} (thread), 0x${dstWords[i * perPage].toString(16)} (now), expected 0x${v.toString(16)}`);
    }
  }
  // ... and the source is empty afterwards.
  expectSrcPages(0, length / PAGE_SIZE, () => 0, 'after the move');
}

