// Read-ahead (adaptive window on sequential faults, never past the served
// range nor over pages already there) and background prefetch.
import { describe, expect, it } from 'vitest';
import { readPagemap } from '../lib/index';
import { withHarness } from './helpers/harness';
import { ALL_KINDS, itOnKinds } from './helpers/memory';
import { SEED, firstWords, pagerFor, pattern, snapshotFile } from './helpers/pager';

function presentPages(address: number, length: number): boolean[] {
  return readPagemap(address, length).map((e) => e.present);
}

describe('Pager read-ahead', () => {
  it('a sequential touch takes far fewer faults with read-ahead; contents are the same', () =>
    withHarness(async (h) => {
      const pages = 1024;
      const data = pattern(pages * 4096, SEED);
      const runs: Record<string, { faults: number; readAheadPages: number }> = {};
      for (const readAhead of [false, true]) {
        const r = h.region('anon', pages);
        h.uffd.register(r.mapping, ['missing']);
        const pager = pagerFor(h, { readAhead });
        pager.serve(r.mapping, { kind: 'buffer', buffer: data });
        const t = await h.finished(h.touch(r.mapping.address, r.length));
        expect([...t.values]).toEqual(firstWords(data, 4096));
        expect(Buffer.from(r.mapping.buffer()).equals(data)).toBe(true);
        const s = pager.stats();
        runs[String(readAhead)] = { faults: s.faults, readAheadPages: s.readAheadPages };
        expect(s.faults + s.readAheadPages).toBe(pages);
        pager.close();
        h.uffd.unregister(r.mapping);
      }
      expect(runs.false).toEqual({ faults: pages, readAheadPages: 0 });
      // 64K, 128K, ... 4M windows: 4 MiB in 1 + 2 + ... far below 1024 faults.
      expect(runs.true.faults).toBeLessThan(pages / 16);
      expect(runs.true.readAheadPages).toBeGreaterThan(pages - pages / 16);
    }));

  itOnKinds(
    ALL_KINDS,
    'never past the served range: the rest of the registered range stays empty',
    (kind) =>
      withHarness(async (h) => {
        const r = h.region(kind, 8);
        h.uffd.register(r.mapping, ['missing']);
        const served = { address: r.mapping.address, length: 3 * r.pageSize };
        const pager = pagerFor(h, { readAhead: { min: 64 << 20, max: 64 << 20 } });
        pager.serve(served, { kind: 'buffer', buffer: pattern(served.length, SEED) });
        await h.finished(h.touch(r.mapping.address, r.pageSize));
        const present = presentPages(r.mapping.address, r.length);
        const perPage = r.pageSize / 4096;
        expect(present.filter((_, i) => i < 3 * perPage).every(Boolean)).toBe(true);
        expect(present.filter((_, i) => i >= 3 * perPage).some(Boolean)).toBe(false);
        expect(pager.stats().readAheadPages).toBe(2);
        pager.close();
      }),
    9,
  );

  it('never over a page already there: it keeps its content (EEXIST ends the window)', () =>
    withHarness(async (h) => {
      const pages = 16;
      const r = h.region('anon', pages);
      const mine = Buffer.alloc(4096, 0xab);
      r.prefill(5, mine);
      h.uffd.register(r.mapping, ['missing']);
      const data = pattern(r.length, SEED + 1);
      const pager = pagerFor(h);
      pager.serve(r.mapping, { kind: 'buffer', buffer: data });
      const t = await h.finished(h.touch(r.mapping.address, r.length));
      const expected = Buffer.from(data);
      mine.copy(expected, 5 * 4096);
      expect([...t.values]).toEqual(firstWords(expected, 4096));
      expect(Buffer.from(r.mapping.buffer()).equals(expected)).toBe(true);
      pager.close();
    }));

  it('a random access falls back to the smallest window', () =>
    withHarness(async (h) => {
      const pages = 256;
      const r = h.region('anon', pages);
      h.uffd.register(r.mapping, ['missing']);
      const pager = pagerFor(h, { readAhead: { min: 16384, max: 1 << 20 } });
      pager.serve(r.mapping, { kind: 'zero' });
      await h.finished(h.touch(r.page(100), 4096));
      await h.finished(h.touch(r.page(10), 4096));
      await h.finished(h.touch(r.page(200), 4096));
      expect(pager.stats()).toMatchObject({ faults: 3, readAheadPages: 9 });
      pager.close();
    }));
});

describe('Pager prefetch', () => {
  itOnKinds(
    ALL_KINDS,
    'fills every served page not yet there; later touches do not fault',
    (kind) =>
      withHarness(async (h) => {
        const pages = kind === 'hugetlb' ? 4 : 256;
        const r = h.region(kind, pages);
        h.uffd.register(r.mapping, ['missing']);
        const data = pattern(r.length, SEED + 2);
        const snap = snapshotFile(data);
        try {
          const pager = pagerFor(h, { readAhead: false });
          pager.serve(r.mapping, { kind: 'file', path: snap.path });
          await h.finished(h.touch(r.page(1), r.pageSize));
          const result = await pager.prefetch();
          expect(result).toEqual({ bytes: r.length - r.pageSize, stopped: false });
          expect(presentPages(r.mapping.address, r.length).every(Boolean)).toBe(true);
          await h.finished(h.touch(r.mapping.address, r.length, { stride: r.pageSize }));
          const s = pager.stats();
          expect(s.faults).toBe(1);
          expect(s.prefetchedBytes).toBe(r.length - r.pageSize);
          expect(Buffer.from(r.mapping.buffer()).equals(data)).toBe(true);
          pager.close();
        } finally {
          snap.remove();
        }
      }),
    5,
  );

  it('races with faulting threads: every page ends right, each mapped once (the loser gets EEXIST)', () =>
    withHarness(async (h) => {
      const pages = 2048;
      const r = h.region('anon', pages);
      h.uffd.register(r.mapping, ['missing']);
      const data = pattern(r.length, SEED + 30);
      const pager = pagerFor(h, { readAhead: { min: 4096, max: 16384 } });
      pager.serve(r.mapping, { kind: 'buffer', buffer: data });
      const prefetch = pager.prefetch();
      const touches = [0, 1].map((i) => h.touch(r.page(i * (pages / 2)), r.length / 2));
      const results = await Promise.all(touches.map((t) => h.finished(t)));
      const { bytes } = await prefetch;
      results.forEach((t, i) => expect([...t.values]).toEqual(firstWords(data.subarray((i * r.length) / 2, ((i + 1) * r.length) / 2), 4096)));
      expect(Buffer.from(r.mapping.buffer()).equals(data)).toBe(true);
      const s = pager.stats();
      // Every byte was mapped by exactly one of them.
      expect(s.bytes).toBe(r.length);
      expect(s.prefetchedBytes).toBe(bytes);
      pager.close();
    }));

  it('of a part of a range; and an aborted prefetch rejects with AbortError', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 64);
      h.uffd.register(r.mapping, ['missing']);
      const pager = pagerFor(h);
      pager.serve(r.mapping, { kind: 'buffer', buffer: pattern(r.length, SEED) });
      expect(await pager.prefetch({ address: r.page(8), length: 8 * 4096 })).toEqual({ bytes: 8 * 4096, stopped: false });
      const present = presentPages(r.mapping.address, r.length);
      expect(present.map((p, i) => p === (i >= 8 && i < 16)).every(Boolean)).toBe(true);
      await expect(pager.prefetch(undefined, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
      pager.close();
    }));

  it('close() stops a prefetch: it resolves with stopped', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 4096);
      h.uffd.register(r.mapping, ['missing']);
      const pager = pagerFor(h);
      pager.serve(r.mapping, { kind: 'zero' });
      const p = pager.prefetch();
      pager.close();
      expect(await p).toMatchObject({ stopped: true });
    }));
});

describe('Pager stats', () => {
  it("'stats' events while faults are served, with statsIntervalMs", () =>
    withHarness(async (h) => {
      const r = h.region('anon', 64);
      h.uffd.register(r.mapping, ['missing']);
      const pager = pagerFor(h, { readAhead: false, statsIntervalMs: 1 });
      const seen: number[] = [];
      pager.on('stats', (s: { faults: number }) => seen.push(s.faults));
      pager.serve(r.mapping, { kind: 'zero' });
      for (let i = 0; i < 8; i++) {
        await h.finished(h.touch(r.page(i * 8), 8 * 4096));
        await new Promise((resolve) => setTimeout(resolve, 3));
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((n, i) => n >= 1 && (i === 0 || n >= seen[i - 1]))).toBe(true);
      const s = pager.stats();
      expect(s.faults).toBe(64);
      expect([...s.threads.values()].reduce((a, b) => a + b, 0)).toBe(64);
      expect(s.latency.reduce((a, b) => a + b, 0)).toBe(64);
      expect(s.latencyP99Ns).toBeGreaterThanOrEqual(s.latencyP50Ns);
      const before = seen.length;
      pager.close();
      // A last 'stats' with the final numbers.
      expect(seen.length).toBe(before + 1);
      expect(seen[seen.length - 1]).toBe(64);
    }));
});
