// The 'function' source: pages requested from JavaScript, correct under
// concurrency (several faulting threads, the same page faulted twice,
// overlapping calls), and failures resolved by the policy ('zero' here; the
// 'poison' cases run in child processes in pager-safety.test.ts).
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { PagerFailure } from '../lib/index';
import { touchInWorker } from '../lib/testing/index';
import { withHarness } from './helpers/harness';
import { ALL_KINDS, itOnKinds } from './helpers/memory';
import { SEED, firstWords, pagerFor, pattern } from './helpers/pager';

describe('Pager function source', () => {
  itOnKinds(
    ALL_KINDS,
    'each faulting page is read once, with its address and source offset',
    (kind) =>
      withHarness(async (h) => {
        const pages = 4;
        const r = h.region(kind, pages);
        h.uffd.register(r.mapping, ['missing']);
        const data = pattern(r.length + r.pageSize, SEED);
        const calls: Array<{ address: number; length: number; offset: number; threadId: number }> = [];
        const pager = pagerFor(h);
        pager.serve(r.mapping, {
          kind: 'function',
          offset: r.pageSize,
          read: async (address, length, req) => {
            calls.push({ address, length, offset: req.offset, threadId: req.threadId });
            await sleep(1);
            return data.subarray(req.offset, req.offset + length);
          },
        });
        const t = await h.finished(h.touch(r.mapping.address, r.length, { stride: r.pageSize }));
        const expected = data.subarray(r.pageSize);
        expect([...t.values]).toEqual(firstWords(expected, r.pageSize));
        expect(Buffer.from(r.mapping.buffer()).equals(expected)).toBe(true);
        expect(calls).toEqual(
          Array.from({ length: pages }, (_, i) => ({ address: r.page(i), length: r.pageSize, offset: (i + 1) * r.pageSize, threadId: t.tid })),
        );
        expect(pager.stats()).toMatchObject({ functionFaults: pages, faults: pages, failures: 0 });
        pager.close();
      }),
    4,
  );

  it('several threads racing on the same pages: every page read once, every thread sees the data', () =>
    withHarness(async (h) => {
      const pages = 32;
      const r = h.region('anon', pages);
      h.uffd.register(r.mapping, ['missing']);
      const data = pattern(r.length, SEED + 5);
      const perPage = new Map<number, number>();
      const pager = pagerFor(h);
      pager.serve(r.mapping, {
        kind: 'function',
        read: async (address, length, { offset }) => {
          perPage.set(address, (perPage.get(address) ?? 0) + 1);
          await sleep(Math.random() * 4);
          return data.subarray(offset, offset + length);
        },
      });
      const touches = [0, 1, 2, 3].map(() => h.touch(r.mapping.address, r.length, { stride: r.pageSize }));
      const results = await Promise.all(touches.map((t) => h.finished(t)));
      for (const t of results) expect([...t.values]).toEqual(firstWords(data, r.pageSize));
      expect(Buffer.from(r.mapping.buffer()).equals(data)).toBe(true);
      // A second fault on a page already requested waits for the same COPY.
      expect([...perPage.values()].every((n) => n === 1)).toBe(true);
      expect(perPage.size).toBe(pages);
      const s = pager.stats();
      expect(s.failures).toBe(0);
      expect(new Set(results.map((t) => t.tid))).toEqual(new Set([...s.threads.keys()].filter((tid) => results.some((t) => t.tid === tid))));
      pager.close();
    }));

  it('overlapping calls complete out of order', () =>
    withHarness(async (h) => {
      const pages = 8;
      const r = h.region('anon', pages);
      h.uffd.register(r.mapping, ['missing']);
      const data = pattern(r.length, SEED + 9);
      let inFlight = 0;
      let maxInFlight = 0;
      const pager = pagerFor(h);
      pager.serve(r.mapping, {
        kind: 'function',
        // Later pages answer first.
        read: async (_address, length, { offset }) => {
          maxInFlight = Math.max(maxInFlight, ++inFlight);
          await sleep((pages - offset / length) * 3);
          inFlight--;
          return Buffer.from(data.subarray(offset, offset + length));
        },
      });
      // One thread per page, all at once.
      const touches = Array.from({ length: pages }, (_, i) => h.touch(r.page(i), r.pageSize));
      const results = await Promise.all(touches.map((t) => h.finished(t)));
      results.forEach((t, i) => expect([...t.values]).toEqual([data.readUInt32LE(i * r.pageSize)]));
      expect(maxInFlight).toBeGreaterThan(1);
      expect(Buffer.from(r.mapping.buffer()).equals(data)).toBe(true);
      pager.close();
    }));

  it.each([
    ['throws', (): never => {
      throw new Error('source down');
    }, 'source down'],
    ['rejects', async (): Promise<Buffer> => {
      throw new Error('remote gone');
    }, 'remote gone'],
    ['returns too few bytes', (): Buffer => Buffer.alloc(16), 'returned 16 bytes'],
    ['returns no bytes', (): Buffer => 'nope' as unknown as Buffer, 'not bytes'],
  ] as const)('a function that %s: the page is zeroed (onFailure zero) and the failure reported', (_name, read, message) =>
    withHarness(async (h) => {
      const r = h.region('anon', 2);
      h.uffd.register(r.mapping, ['missing']);
      r.mapping.buffer();
      const pager = pagerFor(h, { onFailure: 'zero' });
      const failures: PagerFailure[] = [];
      pager.on('failure', (f: PagerFailure) => failures.push(f));
      pager.serve(r.mapping, { kind: 'function', read });
      const t = await h.finished(h.touch(r.mapping.address, r.length, { stride: r.pageSize }));
      expect([...t.values]).toEqual([0, 0]);
      expect(failures.map((f) => f.address)).toEqual([r.page(0), r.page(1)]);
      expect(failures[0]).toMatchObject({ length: r.pageSize, offset: 0, resolvedAs: 'zero' });
      expect(String((failures[0].cause as Error).message)).toContain(message);
      expect(pager.stats().failures).toBe(2);
      pager.close();
    }));

  it('a fault of the JavaScript thread in a function range follows jsThreadFaults (it cannot run the function)', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 1);
      h.uffd.register(r.mapping, ['missing']);
      let called = 0;
      const pager = pagerFor(h);
      pager.serve(r.mapping, { kind: 'function', read: () => (called++, Buffer.alloc(r.pageSize, 1)) });
      const warned = new Promise((resolve) => process.once('warning', resolve));
      expect(r.mapping.buffer()[0]).toBe(0); // default policy: a zero page
      await warned;
      expect(called).toBe(0);
      pager.close();
    }));

  it('a Worker\'s JavaScript thread faulting on function and buffer ranges of the main thread\'s pager', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 8);
      h.uffd.register(r.mapping, ['missing']);
      const data = pattern(r.length, SEED + 21);
      const pager = pagerFor(h, { readAhead: false });
      pager.serve({ address: r.mapping.address, length: 4 * 4096 }, { kind: 'buffer', buffer: data.subarray(0, 4 * 4096) });
      pager.serve({ address: r.page(4), length: 4 * 4096 }, {
        kind: 'function',
        offset: 4 * 4096,
        read: async (_address, length, { offset }) => data.subarray(offset, offset + length),
      });
      const { worker, result } = touchInWorker(r.mapping.handle, r.length);
      const t = await result;
      await worker.terminate();
      expect([...t.values]).toEqual(firstWords(data, 4096));
      expect(Buffer.from(r.mapping.buffer()).equals(data)).toBe(true);
      const s = pager.stats();
      expect(s.threads.get(t.tid)).toBe(8);
      expect(s.functionFaults).toBe(4);
      pager.close();
    }));
});
