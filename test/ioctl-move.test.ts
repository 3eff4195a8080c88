// UFFDIO_MOVE resolving real MISSING faults by moving pages from another
// anonymous mapping (the pages leave the source). MOVE is for private
// anonymous memory only: a shmem destination is refused.
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../lib/index';
import { stillBlocked, waitUntilBlockedInFault, withHarness, type FaultHarness } from './helpers/harness';
import { pattern, type Region } from './helpers/memory';

const P = PAGE_SIZE;
const SEED = 0x30fe0000;
const WRITTEN = 0x0dd0d00d;

/** A registered destination and an unregistered source whose listed pages hold pattern(SEED + i). */
function setup(h: FaultHarness, pages: number, filled: number[]): { dst: Region; src: Region } {
  const dst = h.region('anon', pages);
  const src = h.region('anon', pages);
  for (const i of filled) src.prefill(i, pattern(P, SEED + i));
  expect(h.uffd.register(dst.mapping, ['missing']).has('MOVE')).toBe(true);
  return { dst, src };
}

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('UFFDIO_MOVE', () => {
  it('resolves a read fault with the moved page; the source page is gone', () =>
    withHarness(async (h) => {
      const { dst, src } = setup(h, 1, [0]);
      const touch = h.touch(dst.page(0), P);
      const f = await h.nextFault();
      expect(f).toMatchObject({ address: dst.page(0), write: false, wp: false, minor: false });
      expect(h.uffd.move(dst.page(0), src.page(0), P)).toEqual({ bytes: P, status: 'complete' });
      const t = await h.finished(touch);
      expect(f.threadId).toBe(t.tid);
      expect([...t.values]).toEqual([SEED]);
      expect(dst.read(0).equals(pattern(P, SEED))).toBe(true);
      expect(src.read(0).equals(Buffer.alloc(P))).toBe(true);
    }));

  it('resolves a write fault over three pages in one MOVE', () =>
    withHarness(async (h) => {
      const { dst, src } = setup(h, 3, [0, 1, 2]);
      const touch = h.touch(dst.page(0), 3 * P, { write: true, value: WRITTEN });
      expect(await h.nextFault()).toMatchObject({ address: dst.page(0), write: true });
      expect(h.uffd.move(dst.page(0), src.page(0), 3 * P)).toEqual({ bytes: 3 * P, status: 'complete' });
      expect([...(await h.finished(touch)).values]).toEqual([WRITTEN, WRITTEN + 1, WRITTEN + 2]);
      for (let i = 0; i < 3; i++) {
        const expected = pattern(P, SEED + i);
        expected.writeUInt32LE(WRITTEN + i, 0);
        expect(dst.read(i).equals(expected), `page ${i}`).toBe(true);
        expect(src.read(i).equals(Buffer.alloc(P)), `source page ${i}`).toBe(true);
      }
    }));

  it('DONTWAKE moves the page but leaves the thread blocked until WAKE', () =>
    withHarness(async (h) => {
      const { dst, src } = setup(h, 1, [0]);
      const touch = h.touch(dst.page(0), P);
      const f = await h.nextFault();
      await waitUntilBlockedInFault(f.threadId);
      expect(h.uffd.move(dst.page(0), src.page(0), P, { dontWake: true })).toEqual({ bytes: P, status: 'complete' });
      expect(await stillBlocked(touch, f.threadId)).toBe(true);
      expect(dst.read(0).equals(pattern(P, SEED))).toBe(true);
      h.uffd.wake(dst.page(0), P);
      expect([...(await h.finished(touch)).values]).toEqual([SEED]);
    }));

  it('ALLOW_SRC_HOLES skips a hole in the source: the destination page stays missing and faults later', () =>
    withHarness(async (h) => {
      const { dst, src } = setup(h, 2, [0]);
      const touch = h.touch(dst.page(0), 2 * P);
      expect((await h.nextFault()).address).toBe(dst.page(0));
      expect(h.uffd.move(dst.page(0), src.page(0), 2 * P, { allowSrcHoles: true })).toEqual({ bytes: 2 * P, status: 'complete' });
      const hole = await h.nextFault();
      expect(hole.address).toBe(dst.page(1));
      h.uffd.zeropage(hole.address, P);
      expect([...(await h.finished(touch)).values]).toEqual([SEED, 0]);
    }));

  it('without ALLOW_SRC_HOLES a hole stops the move: ENOENT at once, EAGAIN after progress', () =>
    withHarness(async (h) => {
      const { dst, src } = setup(h, 3, [0]);
      expect(errorOf(() => h.uffd.move(dst.page(1), src.page(1), P))).toMatchObject({
        code: 'ENOENT',
        errno: -2,
        syscall: 'ioctl(UFFDIO_MOVE)',
        address: dst.page(1),
        length: P,
      });
      const touch = h.touch(dst.page(0), P);
      expect((await h.nextFault()).address).toBe(dst.page(0));
      expect(h.uffd.move(dst.page(0), src.page(0), 2 * P)).toEqual({ bytes: P, status: 'EAGAIN' });
      expect([...(await h.finished(touch)).values]).toEqual([SEED]);
    }));

  it('takes only its own mode options: a stray writeProtect is not ALLOW_SRC_HOLES', () =>
    withHarness(async (h) => {
      const { dst, src } = setup(h, 1, []);
      // COPY_MODE_WP and MOVE_MODE_ALLOW_SRC_HOLES are both 1 << 1; the
      // options once shared one bit table, and this moved "successfully".
      const stray = { writeProtect: true } as unknown as { allowSrcHoles?: boolean };
      expect(errorOf(() => h.uffd.move(dst.page(0), src.page(0), P, stray))).toMatchObject({ code: 'ENOENT' });
      expect(() => h.uffd.move(dst.page(0), src.page(0), P, { allowSrcHoles: 'true' as unknown as boolean })).toThrow(TypeError);
      const touch = h.touch(dst.page(0), P);
      expect((await h.nextFault()).address).toBe(dst.page(0));
      h.uffd.zeropage(dst.page(0), P);
      expect([...(await h.finished(touch)).values]).toEqual([0]);
    }));

  it('onto a populated page it is EEXIST and the source keeps its page', () =>
    withHarness(async (h) => {
      const { dst, src } = setup(h, 1, [0]);
      const touch = h.touch(dst.page(0), P);
      await h.nextFault();
      h.uffd.copy(dst.page(0), pattern(P, 0x5eed));
      await h.finished(touch);
      expect(h.uffd.move(dst.page(0), src.page(0), P)).toEqual({ bytes: 0, status: 'EEXIST' });
      expect(src.read(0).equals(pattern(P, SEED))).toBe(true);
      expect(dst.read(0).equals(pattern(P, 0x5eed))).toBe(true);
    }));

  it('a shmem destination is an EINVAL errno error; the fault is then resolved by COPY', () =>
    withHarness(async (h) => {
      const dst = h.region('shmem', 1);
      const src = h.region('anon', 1);
      src.prefill(0, pattern(P, SEED));
      h.uffd.register(dst.mapping, ['missing']);
      const touch = h.touch(dst.page(0), P);
      const f = await h.nextFault();
      expect(errorOf(() => h.uffd.move(f.address, src.page(0), P))).toMatchObject({ code: 'EINVAL', syscall: 'ioctl(UFFDIO_MOVE)', address: dst.page(0) });
      expect(src.read(0).equals(pattern(P, SEED))).toBe(true);
      h.uffd.copyFromAddress(f.address, src.page(0), P);
      expect([...(await h.finished(touch)).values]).toEqual([SEED]);
    }));

  it('bad arguments are RangeError / TypeError', () =>
    withHarness(async (h) => {
      const { dst, src } = setup(h, 2, [0]);
      expect(() => h.uffd.move(dst.page(0), src.page(0) + 8, P)).toThrow(RangeError);
      expect(() => h.uffd.move(dst.page(0), 0, P)).toThrow(RangeError);
      expect(() => h.uffd.move(dst.page(0), 'x' as unknown as number, P)).toThrow(TypeError);
      expect(() => h.uffd.move(dst.page(0), src.page(0), 3 * P)).toThrow(RangeError);
      expect(() => h.uffd.move(src.page(0), dst.page(0), P)).toThrow(RangeError);
      expect(src.read(0).equals(pattern(P, SEED))).toBe(true);
    }));
});
