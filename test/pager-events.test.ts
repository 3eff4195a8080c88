// The pager under non-cooperative events: madvise(DONTNEED) of served pages
// (REMOVE: zero afterwards, or the source again), mremap of a served range
// (REMAP: the range follows), munmap (UNMAP: dropped), fork (the child's
// uffd is served natively with the same sources), and events still reaching
// uffd.events().
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Mapping, PAGE_SIZE } from '../lib/index';
import { waitUntilBlockedInFault, withHarness } from './helpers/harness';
import { useForkedChildren, userfaultfdCount } from './helpers/fork';
import { SEED, firstWords, pagerFor, pattern } from './helpers/pager';

const EVENTS = { features: ['EVENT_REMOVE', 'EVENT_REMAP', 'EVENT_UNMAP', 'EVENT_FORK'] as const };
const fork = useForkedChildren();

/**
 * An address where `length` bytes are free now: the middle of a large hole
 * (mapped, then unmapped), so that mappings made next (a fork report) do not
 * land there and get replaced by an MREMAP_FIXED.
 */
function freeAddress(length: number): number {
  const probe = Mapping.anonymous(length + (256 << 20));
  const address = probe.address + (128 << 20);
  probe.unmap();
  return address;
}

describe('Pager and events', () => {
  it.each(['zero', 'source'] as const)('madvise(DONTNEED) then re-touch: afterRemove %s', (afterRemove) =>
    withHarness(async (h) => {
      const pages = 8;
      const r = h.region('anon', pages);
      h.uffd.register(r.mapping, ['missing']);
      const data = pattern(r.length, SEED);
      const pager = pagerFor(h, { afterRemove });
      const removes: unknown[] = [];
      pager.on('remove', (e) => removes.push(e));
      pager.serve(r.mapping, { kind: 'buffer', buffer: data });
      await h.finished(h.touch(r.mapping.address, r.length));
      r.mapping.madvise('DONTNEED', 2 * PAGE_SIZE, 3 * PAGE_SIZE);
      const t = await h.finished(h.touch(r.mapping.address, r.length));
      const expected = Buffer.from(data);
      if (afterRemove === 'zero') expected.fill(0, 2 * PAGE_SIZE, 5 * PAGE_SIZE);
      expect([...t.values]).toEqual(firstWords(expected, PAGE_SIZE));
      expect(Buffer.from(r.mapping.buffer()).equals(expected)).toBe(true);
      for (let i = 0; i < 100 && removes.length === 0; i++) await sleep(10);
      expect(removes).toEqual([{ start: r.page(2), end: r.page(5), child: false }]);
      const kinds = pager.ranges().map((s) => [s.address, s.length, s.kind]);
      expect(kinds).toEqual(
        afterRemove === 'zero'
          ? [
              [r.page(0), 2 * PAGE_SIZE, 'buffer'],
              [r.page(2), 3 * PAGE_SIZE, 'zero'],
              [r.page(5), 3 * PAGE_SIZE, 'buffer'],
            ]
          : [[r.page(0), r.length, 'buffer']],
      );
      // The event still reaches the uffd's own stream.
      expect(await h.nextEvent()).toEqual({ type: 'remove', start: r.page(2), end: r.page(5) });
      pager.close();
    }, EVENTS));

  it('mremap of a served range: the range follows and is served at its new address', () =>
    withHarness(async (h) => {
      const pages = 8;
      const r = h.region('anon', pages);
      h.uffd.register(r.mapping, ['missing']);
      const data = pattern(r.length, SEED + 1);
      const pager = pagerFor(h, { readAhead: false });
      pager.serve(r.mapping, { kind: 'buffer', buffer: data });
      await h.finished(h.touch(r.mapping.address, 2 * PAGE_SIZE));
      const from = r.mapping.address;
      const to = r.mapping.remap(r.length, { address: freeAddress(r.length) });
      expect(to).not.toBe(from);
      expect(pager.ranges()).toEqual([{ address: to, length: r.length, offset: 0, kind: 'buffer' }]);
      const t = await h.finished(h.touch(to, r.length));
      expect([...t.values]).toEqual(firstWords(data, PAGE_SIZE));
      expect(Buffer.from(r.mapping.buffer()).equals(data)).toBe(true);
      expect(await h.nextEvent()).toEqual({ type: 'remap', from, to, length: r.length });
      pager.close();
    }, EVENTS));

  it('munmap of a served range drops it; other ranges are still served', () =>
    withHarness(async (h) => {
      const a = Mapping.anonymous(4 * PAGE_SIZE);
      const b = h.region('anon', 4);
      h.uffd.register(a, ['missing']);
      h.uffd.register(b.mapping, ['missing']);
      const pager = pagerFor(h);
      pager.serve(a, { kind: 'zero' });
      pager.serve(b.mapping, { kind: 'buffer', buffer: pattern(b.length, SEED) });
      const start = a.address;
      a.unmap();
      expect(pager.ranges().map((s) => s.address)).toEqual([b.mapping.address]);
      expect(await h.nextEvent()).toEqual({ type: 'unmap', start, end: start + 4 * PAGE_SIZE });
      const t = await h.finished(h.touch(b.mapping.address, b.length));
      expect([...t.values]).toEqual(firstWords(pattern(b.length, SEED), PAGE_SIZE));
      pager.close();
    }, EVENTS));

  it('fork: the child is served from the same source, natively, and its events are followed', () =>
    withHarness(async (h) => {
      const pages = 8;
      const r = h.region('anon', pages);
      h.uffd.register(r.mapping, ['missing']);
      const data = pattern(r.length, SEED + 2);
      const pager = pagerFor(h, { readAhead: false });
      const forks: unknown[] = [];
      pager.on('fork', (e) => forks.push(e));
      pager.serve(r.mapping, { kind: 'buffer', buffer: data });
      // The parent touched page 0 before the fork: the child inherits it.
      await h.finished(h.touch(r.mapping.address, PAGE_SIZE));
      const to = freeAddress(r.length);
      const fdsBefore = userfaultfdCount();
      const child = fork([
        { op: 'read', address: r.mapping.address, length: 4 * PAGE_SIZE },
        { op: 'madvise', address: r.page(1), length: PAGE_SIZE, advice: 'DONTNEED' },
        { op: 'mremap', address: r.mapping.address, length: r.length, newAddress: to },
        { op: 'read', address: to, length: r.length },
      ]);
      const result = await child.exited;
      expect(result.failedStep).toBeUndefined();
      expect(result).toMatchObject({ exitCode: 0, signal: null });
      const expected = Buffer.from(data);
      expected.fill(0, PAGE_SIZE, 2 * PAGE_SIZE); // removed in the child: zero afterwards
      expect([...result.values]).toEqual([...firstWords(data, PAGE_SIZE).slice(0, 4), ...firstWords(expected, PAGE_SIZE)]);
      expect(forks).toEqual([{ nested: false }]);
      expect(pager.stats().forks).toBe(1);
      // The parent's range did not move.
      expect(pager.ranges()).toEqual([{ address: r.mapping.address, length: r.length, offset: 0, kind: 'buffer' }]);
      // The child's server notices the exit (within a second) and closes its uffd.
      for (let i = 0; i < 60 && userfaultfdCount() > fdsBefore; i++) await sleep(50);
      expect(userfaultfdCount()).toBe(fdsBefore);
      pager.close();
    }, EVENTS));

  it('fork: a function range of the child is served by the same function (with the child\'s thread ids)', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 4);
      h.uffd.register(r.mapping, ['missing']);
      const data = pattern(r.length, SEED + 3);
      const askedBy = new Set<number>();
      const pager = pagerFor(h);
      pager.serve(r.mapping, {
        kind: 'function',
        read: async (_address, length, { offset, threadId }) => {
          askedBy.add(threadId);
          return data.subarray(offset, offset + length);
        },
      });
      const child = fork([{ op: 'read', address: r.mapping.address, length: r.length }]);
      const result = await child.exited;
      expect(result).toMatchObject({ exitCode: 0, signal: null });
      expect([...result.values]).toEqual(firstWords(data, PAGE_SIZE));
      expect([...askedBy]).toEqual([child.pid]);
      pager.close();
    }, EVENTS));

  it('faults outside served ranges and WP faults reach uffd.events()', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 4);
      h.uffd.register(r.mapping, ['missing']);
      const pager = pagerFor(h);
      pager.serve({ address: r.mapping.address, length: 2 * PAGE_SIZE }, { kind: 'zero' });
      const touch = h.touch(r.mapping.address, r.length);
      const f = await h.nextFault();
      expect(f.address).toBe(r.page(2));
      h.uffd.copy(r.page(2), pattern(2 * PAGE_SIZE, 7));
      expect([...(await h.finished(touch)).values]).toEqual([0, 0, 7, 7 + 1024]);
      pager.close();
    }));

  it('a fault already waiting when its range is served is served too', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 2);
      h.uffd.register(r.mapping, ['missing']);
      const touch = h.touch(r.mapping.address, r.length);
      // Read by the uffd's reader and queued for JavaScript; nobody iterates.
      await waitUntilBlockedInFault((await h.nextFault()).threadId);
      const pager = pagerFor(h);
      pager.serve(r.mapping, { kind: 'buffer', buffer: pattern(r.length, SEED + 4) });
      expect([...(await h.finished(touch)).values]).toEqual(firstWords(pattern(r.length, SEED + 4), PAGE_SIZE));
      pager.close();
    }));

  it('unserve: faults there go back to uffd.events()', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 4);
      h.uffd.register(r.mapping, ['missing']);
      const pager = pagerFor(h, { readAhead: false });
      pager.serve(r.mapping, { kind: 'zero' });
      expect(pager.unserve({ address: r.page(2), length: 2 * PAGE_SIZE })).toBe(2 * PAGE_SIZE);
      const touch = h.touch(r.mapping.address, r.length);
      expect((await h.nextFault()).address).toBe(r.page(2));
      h.uffd.zeropage(r.page(2), 2 * PAGE_SIZE);
      await h.finished(touch);
      expect(pager.stats().faults).toBe(2);
      pager.close();
    }));
});

describe('Pager races', () => {
  it('threads touching while the JS thread keeps discarding pages (REMOVE, EAGAIN): every page ends right, no hang', () =>
    withHarness(async (h) => {
      const pages = 512;
      const r = h.region('anon', pages);
      h.uffd.register(r.mapping, ['missing']);
      const data = pattern(r.length, SEED + 11);
      const pager = pagerFor(h, { afterRemove: 'source' });
      pager.serve(r.mapping, { kind: 'buffer', buffer: data });
      let rounds = 0;
      let done = false;
      const touches = [0, 1, 2].map(async (i) => {
        for (let n = 0; n < 5; n++) {
          const t = await h.finished(h.touch(r.mapping.address, r.length, { stride: PAGE_SIZE * (i + 1) }));
          expect([...t.values]).toEqual(firstWords(data, PAGE_SIZE, PAGE_SIZE * (i + 1)));
        }
      });
      const discard = (async () => {
        while (!done) {
          const at = (rounds * 37) % (pages - 16);
          r.mapping.madvise('DONTNEED', at * PAGE_SIZE, 16 * PAGE_SIZE);
          rounds++;
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      await Promise.all(touches);
      done = true;
      await discard;
      await h.finished(h.touch(r.mapping.address, r.length));
      expect(Buffer.from(r.mapping.buffer()).equals(data)).toBe(true);
      expect(rounds).toBeGreaterThan(0);
      pager.close();
    }, EVENTS));

  // A shared mapping keeps its pages in the page cache across DONTNEED:
  // MADV_REMOVE is what discards them (and sends REMOVE).
  it('hugetlb: madvise(REMOVE) of a served huge page, then re-touch reads zeros', async (ctx) => {
    const { hugetlbSkipReason } = await import('./helpers/hugepages');
    const reason = hugetlbSkipReason(4);
    if (reason) ctx.skip(reason);
    await withHarness(async (h) => {
      const r = h.region('hugetlb', 2);
      h.uffd.register(r.mapping, ['missing']);
      const data = pattern(r.length, SEED + 12);
      const pager = pagerFor(h);
      pager.serve(r.mapping, { kind: 'buffer', buffer: data });
      await h.finished(h.touch(r.mapping.address, r.length, { stride: r.pageSize }));
      r.mapping.madvise('REMOVE', r.pageSize, r.pageSize);
      const t = await h.finished(h.touch(r.mapping.address, r.length, { stride: r.pageSize }));
      expect([...t.values]).toEqual([data.readUInt32LE(0), 0]);
      expect(r.read(1).equals(Buffer.alloc(r.pageSize))).toBe(true);
      pager.close();
    }, EVENTS);
  });
});
