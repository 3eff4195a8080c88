// UFFDIO_WAKE and the DONTWAKE modes: which threads a wake releases, that a
// wake without a resolution makes the thread fault again, and that one
// resolving ioctl wakes every thread waiting in its range.
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../lib/index';
import { stillBlocked, waitUntilBlockedInFault, withHarness } from './helpers/harness';
import { ALL_KINDS, itOnKinds, pattern } from './helpers/memory';

const SEED = 0x3a4e0000;

describe('UFFDIO_WAKE', () => {
  itOnKinds(ALL_KINDS, 'a wake without a resolution makes the thread fault again on the same page', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      h.uffd.register(r.mapping, ['missing']);
      const touch = h.touch(r.page(0), r.pageSize, { stride: r.pageSize });
      const first = await h.nextFault();
      // Wake only a thread that sleeps: a wake before it sleeps is lost.
      await waitUntilBlockedInFault(first.threadId);
      expect(h.uffd.wake(r.page(0), r.pageSize)).toEqual({ bytes: r.pageSize, status: 'complete' });
      const again = await h.nextFault();
      expect(again).toMatchObject({ address: r.page(0), threadId: first.threadId, wp: false, minor: false });
      expect(touch.settled).toBe(false);
      h.uffd.copy(r.page(0), pattern(r.pageSize, SEED));
      expect([...(await h.finished(touch)).values]).toEqual([SEED]);
    }),
  );

  itOnKinds(ALL_KINDS, 'one COPY wakes every thread blocked on its page', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      h.uffd.register(r.mapping, ['missing']);
      const a = h.touch(r.page(0), r.pageSize, { stride: r.pageSize });
      const b = h.touch(r.page(0), r.pageSize, { stride: r.pageSize });
      const faults = [await h.nextFault(), await h.nextFault()];
      expect(faults.map((f) => f.address)).toEqual([r.page(0), r.page(0)]);
      for (const f of faults) await waitUntilBlockedInFault(f.threadId);
      expect(h.uffd.copy(r.page(0), pattern(r.pageSize, SEED))).toEqual({ bytes: r.pageSize, status: 'complete' });
      const [ta, tb] = [await h.finished(a), await h.finished(b)];
      expect(new Set(faults.map((f) => f.threadId))).toEqual(new Set([ta.tid, tb.tid]));
      expect([...ta.values, ...tb.values]).toEqual([SEED, SEED]);
    }),
  );

  itOnKinds(ALL_KINDS, 'one WAKE after a DONTWAKE COPY of two pages releases the threads of both', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 2);
      h.uffd.register(r.mapping, ['missing']);
      const a = h.touch(r.page(0), r.pageSize, { stride: r.pageSize });
      const b = h.touch(r.page(1), r.pageSize, { stride: r.pageSize });
      const faults = [await h.nextFault(), await h.nextFault()];
      expect(new Set(faults.map((f) => f.address))).toEqual(new Set([r.page(0), r.page(1)]));
      for (const f of faults) await waitUntilBlockedInFault(f.threadId);
      expect(h.uffd.copy(r.page(0), pattern(r.length, SEED), { dontWake: true })).toEqual({ bytes: r.length, status: 'complete' });
      const tidAt = (page: number) => faults.find((f) => f.address === r.page(page))?.threadId ?? -1;
      expect(await stillBlocked(a, tidAt(0))).toBe(true);
      expect(await stillBlocked(b, tidAt(1))).toBe(true);
      h.uffd.wake(r.mapping.address, r.length);
      expect([...(await h.finished(a)).values]).toEqual([SEED]);
      expect([...(await h.finished(b)).values]).toEqual([SEED + r.pageSize / 4]);
    }),
  );

  it('a WAKE of another page leaves the thread blocked', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 2);
      h.uffd.register(r.mapping, ['missing']);
      const touch = h.touch(r.page(0), PAGE_SIZE);
      const f = await h.nextFault();
      await waitUntilBlockedInFault(f.threadId);
      h.uffd.copy(r.page(0), pattern(PAGE_SIZE, SEED), { dontWake: true });
      expect(h.uffd.wake(r.page(1), PAGE_SIZE)).toEqual({ bytes: PAGE_SIZE, status: 'complete' });
      expect(await stillBlocked(touch, f.threadId)).toBe(true);
      h.uffd.wake(r.page(0), PAGE_SIZE);
      expect([...(await h.finished(touch)).values]).toEqual([SEED]);
    }));

  it('a WAKE with nobody waiting is harmless; bad ranges are RangeErrors', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 2);
      h.uffd.register(r.mapping, ['missing']);
      expect(h.uffd.wake(r.mapping.address, r.length)).toEqual({ bytes: r.length, status: 'complete' });
      expect(() => h.uffd.wake(r.page(0) + 1, PAGE_SIZE)).toThrow(RangeError);
      expect(() => h.uffd.wake(r.page(0), PAGE_SIZE + 1)).toThrow(RangeError);
      expect(() => h.uffd.wake(r.page(0), 3 * PAGE_SIZE)).toThrow(RangeError);
      expect(() => h.uffd.wake(r.page(0), 0)).toThrow(RangeError);
      // The range is still an ordinary registered one.
      const touch = h.touch(r.page(1), PAGE_SIZE);
      expect((await h.nextFault()).address).toBe(r.page(1));
      h.uffd.zeropage(r.page(1), PAGE_SIZE);
      expect([...(await h.finished(touch)).values]).toEqual([0]);
    }));
});
