// Pager sources resolving real faults raised by native threads, natively
// (no JavaScript per fault): zero, buffer, file (path and fd, at an
// offset), memoryFile, on anonymous, shmem and hugetlb 2M memory, with the
// contents checked byte for byte afterwards; MINOR faults by CONTINUE.
import { closeSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MemoryFile } from '../lib/index';
import { withHarness } from './helpers/harness';
import { ALL_KINDS, FILE_KINDS, itOnKinds } from './helpers/memory';
import { SEED, firstWords, pagerFor, pattern, snapshotFile } from './helpers/pager';

const PAGES = 8;

describe('Pager sources', () => {
  itOnKinds(
    ALL_KINDS,
    'zero: every page reads as zeros',
    (kind) =>
      withHarness(async (h) => {
        const r = h.region(kind, PAGES);
        h.uffd.register(r.mapping, ['missing']);
        const pager = pagerFor(h);
        pager.serve(r.mapping, { kind: 'zero' });
        const t = await h.finished(h.touch(r.mapping.address, r.length, { stride: r.pageSize }));
        expect([...t.values]).toEqual(new Array(PAGES).fill(0));
        expect(Buffer.from(r.mapping.buffer()).equals(Buffer.alloc(r.length))).toBe(true);
        expect(pager.stats().faults).toBeGreaterThan(0);
        pager.close();
      }),
    PAGES,
  );

  itOnKinds(
    ALL_KINDS,
    'buffer: pages are copied from the buffer at its offset',
    (kind) =>
      withHarness(async (h) => {
        const r = h.region(kind, PAGES);
        h.uffd.register(r.mapping, ['missing']);
        const data = pattern(r.length + r.pageSize, SEED);
        const pager = pagerFor(h);
        pager.serve(r.mapping, { kind: 'buffer', buffer: data, offset: r.pageSize });
        const expected = data.subarray(r.pageSize);
        const t = await h.finished(h.touch(r.mapping.address, r.length, { stride: r.pageSize }));
        expect([...t.values]).toEqual(firstWords(expected, r.pageSize));
        expect(Buffer.from(r.mapping.buffer()).equals(expected)).toBe(true);
        const s = pager.stats();
        expect(s.bytes).toBe(r.length);
        expect(s.threads.get(t.tid)).toBe(s.faults);
        pager.close();
      }),
    PAGES,
  );

  itOnKinds(
    ALL_KINDS,
    'file by path at an offset: a memory snapshot',
    (kind) =>
      withHarness(async (h) => {
        const r = h.region(kind, PAGES);
        h.uffd.register(r.mapping, ['missing']);
        const data = pattern(r.length + 2 * r.pageSize, SEED + 7);
        const snap = snapshotFile(data);
        try {
          const pager = pagerFor(h);
          pager.serve(r.mapping, { kind: 'file', path: snap.path, offset: 2 * r.pageSize });
          const expected = data.subarray(2 * r.pageSize);
          // Writes: the write lands on the served page.
          const t = await h.finished(h.touch(r.mapping.address, r.length, { stride: r.pageSize, write: true, value: 77 }));
          expect([...t.values]).toEqual(Array.from({ length: PAGES }, (_, i) => 77 + i));
          const seen = Buffer.from(r.mapping.buffer());
          for (let i = 0; i < PAGES; i++) {
            const page = Buffer.from(expected.subarray(i * r.pageSize, (i + 1) * r.pageSize));
            page.writeUInt32LE(77 + i, 0);
            expect(seen.subarray(i * r.pageSize, (i + 1) * r.pageSize).equals(page)).toBe(true);
          }
          pager.close();
        } finally {
          snap.remove();
        }
      }),
    PAGES,
  );

  itOnKinds(
    ['anon'],
    'file by fd: the pager keeps its own copy of the fd',
    (kind) =>
      withHarness(async (h) => {
        const r = h.region(kind, PAGES);
        h.uffd.register(r.mapping, ['missing']);
        const data = pattern(r.length, SEED + 99);
        const snap = snapshotFile(data);
        try {
          const fd = openSync(snap.path, 'r');
          const pager = pagerFor(h);
          pager.serve(r.mapping, { kind: 'file', fd });
          closeSync(fd);
          await h.finished(h.touch(r.mapping.address, r.length, { stride: r.pageSize }));
          expect(Buffer.from(r.mapping.buffer()).equals(data)).toBe(true);
          pager.close();
        } finally {
          snap.remove();
        }
      }),
    PAGES,
  );

  itOnKinds(
    ALL_KINDS,
    'memoryFile: pages are copied from a memfd at an offset',
    (kind) =>
      withHarness(async (h) => {
        const r = h.region(kind, PAGES);
        h.uffd.register(r.mapping, ['missing']);
        const file = MemoryFile.memfd(r.length + r.pageSize, kind === 'hugetlb' ? { hugePageSize: r.pageSize } : {});
        const alias = file.map();
        const data = pattern(r.length + r.pageSize, SEED + 3);
        alias.madvise('POPULATE_WRITE');
        data.copy(alias.buffer());
        try {
          const pager = pagerFor(h);
          pager.serve(r.mapping, { kind: 'memoryFile', file, offset: r.pageSize });
          await h.finished(h.touch(r.mapping.address, r.length, { stride: r.pageSize }));
          expect(Buffer.from(r.mapping.buffer()).equals(data.subarray(r.pageSize))).toBe(true);
          pager.close();
        } finally {
          alias.unmap();
          file.close();
        }
      }),
    2 * PAGES + 1,
  );

  itOnKinds(
    FILE_KINDS,
    'minor faults are resolved with CONTINUE: the page cache content shows',
    (kind) =>
      withHarness(async (h) => {
        const r = h.region(kind, 4);
        const pages = [0, 1, 2, 3].map((i) => pattern(r.pageSize, SEED + 100 * i));
        pages.forEach((p, i) => r.fillAlias(i, p));
        h.uffd.register(r.mapping, ['minor']);
        const pager = pagerFor(h);
        pager.serve(r.mapping, { kind: 'zero' });
        const t = await h.finished(h.touch(r.mapping.address, r.length, { stride: r.pageSize }));
        expect([...t.values]).toEqual(pages.map((p) => p.readUInt32LE(0)));
        pages.forEach((p, i) => expect(r.read(i).equals(p)).toBe(true));
        expect(pager.stats().minorFaults).toBe(4);
        pager.close();
      }),
    5,
  );

  it('a range registered behind the Userfaultfd object\'s back (as by another process) is served with options.pageSize', async () => {
    const { native } = await import('../lib/native');
    await withHarness(async (h) => {
      const r = h.region('anon', 4);
      native.register(h.uffd.fd, r.mapping.address, r.length, 1 /* MISSING */);
      const pager = pagerFor(h);
      expect(() => pager.serve(r.mapping, { kind: 'zero' })).toThrow(/not inside a range registered/);
      const data = pattern(r.length, SEED + 13);
      pager.serve(r.mapping, { kind: 'buffer', buffer: data }, { pageSize: 4096 });
      await h.finished(h.touch(r.mapping.address, r.length));
      expect(Buffer.from(r.mapping.buffer()).equals(data)).toBe(true);
      pager.close();
    });
  });
});
