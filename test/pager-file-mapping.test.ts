// The 'file' source copies from the pager's own read-only mapping of the
// file, with pread()'s semantics kept: a file truncated after serve() (the
// mapping then cannot be read past the new end: the kernel's copy fails with
// EFAULT, or reads zeros to the end of the last page) gives short-read
// failures resolved by the policy, never a signal in the serving process; a
// file that grows, and files that cannot be mapped (empty when served,
// /proc), are read with pread(), as every file is with `mmap: false`;
// pipes are refused at serve(). The
// truncation cases run in a child process: an unresolved fault would hang.
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Mapping } from '../lib/index';
import { describeChild, resultOf, runScript } from './helpers/child';
import { hugetlbSkipReason } from './helpers/hugepages';
import { withHarness } from './helpers/harness';
import { SEED, pagerFor, pattern, snapshotFile } from './helpers/pager';

const COMMON = `
const fs = require('node:fs'), os = require('node:os'), path = require('node:path');
const { Userfaultfd, Mapping, Pager, PAGE_SIZE, HUGE_2M, MemoryFile } = lib;
const out = (o) => console.log(JSON.stringify(o));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pager-map-'));
const file = path.join(dir, 'snap');
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
// Failure notes may reach JavaScript after the faults were resolved: wait
// for them, a while (a missing one then shows in the result).
async function until(done) {
  for (let i = 0; i < 1000 && !done(); i++) await new Promise((r) => setTimeout(r, 5));
}
// Page i's first word is 1000 + i, the rest of the page 0x5a.
function snapshot(pageSize, pages) {
  const data = Buffer.alloc(pageSize * pages, 0x5a);
  for (let i = 0; i < pages; i++) data.writeUInt32LE(1000 + i, i * pageSize);
  return data;
}
`;

describe("Pager 'file' source: served from a mapping of the file", () => {
  it("truncated after serve(), inside a page: the whole pages left are served, the rest are short reads resolved as 'zero'", async () => {
    const r = await runScript(
      `${COMMON}
      const pages = 16;
      const data = snapshot(PAGE_SIZE, pages);
      fs.writeFileSync(file, data);
      const uffd = Userfaultfd.open();
      const m = Mapping.anonymous(pages * PAGE_SIZE);
      uffd.register(m, ['missing']);
      // 4-page windows: the first fault maps pages 0-3 from the mapping.
      const pager = Pager.create(uffd, { onFailure: 'zero', readAhead: { min: 4 * PAGE_SIZE, max: 4 * PAGE_SIZE, async: false } });
      const failures = [];
      pager.on('failure', (f) => failures.push({ page: (f.address - m.address) / PAGE_SIZE, code: f.cause.code }));
      pager.serve(m, { kind: 'file', path: file });
      (async () => {
        const first = await testing.touchPages(m.address, PAGE_SIZE);
        // Now 6.5 pages long: pages 4 and 5 are whole, page 6 ends inside, 7-15 are gone.
        fs.truncateSync(file, 6 * PAGE_SIZE + 2048);
        const rest = await testing.touchPages(m.address + PAGE_SIZE, (pages - 1) * PAGE_SIZE);
        await until(() => failures.length >= 10);
        const expected = Buffer.concat([data.subarray(0, 6 * PAGE_SIZE), Buffer.alloc(10 * PAGE_SIZE)]);
        const s = pager.stats();
        console.log('RESULT ' + JSON.stringify({
          values: [...first.values, ...rest.values],
          same: Buffer.from(m.buffer()).equals(expected),
          failures: failures.sort((a, b) => a.page - b.page),
          statsFailures: s.failures,
          bytes: s.bytes,
        }));
        pager.close();
        uffd.close();
      })();`,
      30_000,
    );
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect(r.signal, describeChild(r)).toBe(null);
    expect(r.code, describeChild(r)).toBe(0);
    expect(resultOf(r)).toEqual({
      values: [1000, 1001, 1002, 1003, 1004, 1005, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      same: true,
      failures: [6, 7, 8, 9, 10, 11, 12, 13, 14, 15].map((page) => ({ page, code: 'ERR_PAGER_SHORT_READ' })),
      statsFailures: 10,
      bytes: 6 * 4096,
    });
  });

  it("truncated after serve(), at a page boundary, with the default 'poison': the thread gets SIGBUS from the policy; the failure is reported", async () => {
    const r = await runScript(
      `${COMMON}
      const data = snapshot(PAGE_SIZE, 4);
      fs.writeFileSync(file, data);
      const uffd = Userfaultfd.open();
      const m = Mapping.anonymous(4 * PAGE_SIZE);
      uffd.register(m, ['missing']);
      const pager = Pager.create(uffd, { readAhead: false });
      const failures = [];
      pager.on('failure', (f) => failures.push({ page: (f.address - m.address) / PAGE_SIZE, resolvedAs: f.resolvedAs, code: f.cause.code }));
      pager.serve(m, { kind: 'file', path: file });
      (async () => {
        const first = await testing.touchPages(m.address, 2 * PAGE_SIZE);
        fs.truncateSync(file, 2 * PAGE_SIZE);
        const t = await testing.touchCatchingSigbus(m.address, 4 * PAGE_SIZE);
        await until(() => failures.length >= 2);
        console.log('RESULT ' + JSON.stringify({
          first: [...first.values],
          signals: [...t.signals], values: [...t.values],
          failures: failures.sort((a, b) => a.page - b.page),
        }));
        pager.close();
        uffd.close();
      })();`,
      30_000,
    );
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect(r.code, describeChild(r)).toBe(0);
    expect(resultOf(r)).toEqual({
      first: [1000, 1001],
      signals: [0, 0, 1, 1],
      values: [1000, 1001, 0, 0],
      failures: [
        { page: 2, resolvedAs: 'poison', code: 'ERR_PAGER_SHORT_READ' },
        { page: 3, resolvedAs: 'poison', code: 'ERR_PAGER_SHORT_READ' },
      ],
    });
  });

  const hugetlbSkip = hugetlbSkipReason(4);
  it.skipIf(hugetlbSkip !== undefined)(`hugetlb 2M pages: a file that ends inside the second huge page serves the first, and the second is a short read${hugetlbSkip ? ` (skipped: ${hugetlbSkip})` : ''}`, async () => {
    const r = await runScript(
      `${COMMON}
      const data = snapshot(HUGE_2M, 2).subarray(0, HUGE_2M + 4096);
      fs.writeFileSync(file, data);
      const uffd = Userfaultfd.open();
      const mf = MemoryFile.memfd(2 * HUGE_2M, { hugePageSize: HUGE_2M });
      const m = mf.map();
      uffd.register(m, ['missing']);
      const pager = Pager.create(uffd, { onFailure: 'zero' });
      const failures = [];
      pager.on('failure', (f) => failures.push({ page: (f.address - m.address) / HUGE_2M, length: f.length, code: f.cause.code }));
      pager.serve(m, { kind: 'file', path: file });
      (async () => {
        const t = await testing.touchPages(m.address, m.length, { stride: HUGE_2M });
        await until(() => failures.length >= 1);
        const b = Buffer.from(m.buffer());
        console.log('RESULT ' + JSON.stringify({
          values: [...t.values],
          first: b.subarray(0, HUGE_2M).equals(data.subarray(0, HUGE_2M)),
          secondZero: b.subarray(HUGE_2M).equals(Buffer.alloc(HUGE_2M)),
          failures,
        }));
        pager.close();
        uffd.close();
      })();`,
      30_000,
    );
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect(r.code, describeChild(r)).toBe(0);
    expect(resultOf(r)).toEqual({
      values: [1000, 0],
      first: true,
      secondZero: true,
      failures: [{ page: 1, length: 2 << 20, code: 'ERR_PAGER_SHORT_READ' }],
    });
  });

  it('a file that grows after serve(): what lies past the mapped length is read with pread()', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 8);
      h.uffd.register(r.mapping, ['missing']);
      const data = pattern(r.length, SEED + 40);
      const snap = snapshotFile(data.subarray(0, 2 * 4096));
      try {
        const pager = pagerFor(h, { readAhead: false });
        pager.serve(r.mapping, { kind: 'file', path: snap.path });
        writeFileSync(snap.path, data);
        await h.finished(h.touch(r.mapping.address, r.length));
        expect(Buffer.from(r.mapping.buffer()).equals(data)).toBe(true);
        expect(pager.stats()).toMatchObject({ faults: 8, failures: 0 });
        pager.close();
      } finally {
        snap.remove();
      }
    }));

  it('an empty file when served (cannot be mapped): pread() serves what it holds by the time of the faults', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 8);
      h.uffd.register(r.mapping, ['missing']);
      const data = pattern(r.length, SEED + 41);
      const snap = snapshotFile(Buffer.alloc(0));
      try {
        const pager = pagerFor(h);
        pager.serve(r.mapping, { kind: 'file', path: snap.path, offset: 4096 });
        writeFileSync(snap.path, Buffer.concat([Buffer.alloc(4096), data]));
        await h.finished(h.touch(r.mapping.address, r.length));
        expect(Buffer.from(r.mapping.buffer()).equals(data)).toBe(true);
        pager.close();
      } finally {
        snap.remove();
      }
    }));

  it('a /proc file (no mmap): /proc/self/mem at the address of a mapping serves its bytes with pread()', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 8);
      h.uffd.register(r.mapping, ['missing']);
      const data = pattern(r.length, SEED + 42);
      const origin = Mapping.anonymous(r.length);
      try {
        data.copy(origin.buffer());
        const pager = pagerFor(h);
        pager.serve(r.mapping, { kind: 'file', path: '/proc/self/mem', offset: origin.address });
        await h.finished(h.touch(r.mapping.address, r.length));
        expect(Buffer.from(r.mapping.buffer()).equals(data)).toBe(true);
        expect(pager.stats().failures).toBe(0);
        pager.close();
      } finally {
        origin.unmap();
      }
    }));

  it('mmap: false reads every window with pread(): the same bytes, at an offset, with read-ahead; a non-boolean is a TypeError', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 256);
      h.uffd.register(r.mapping, ['missing']);
      const data = pattern(r.length + 4096, SEED + 43);
      const snap = snapshotFile(data);
      try {
        const pager = pagerFor(h);
        expect(() => pager.serve(r.mapping, { kind: 'file', path: snap.path, mmap: 'no' as never })).toThrow(TypeError);
        pager.serve(r.mapping, { kind: 'file', path: snap.path, offset: 4096, mmap: false });
        await h.finished(h.touch(r.mapping.address, r.length));
        expect(Buffer.from(r.mapping.buffer()).equals(data.subarray(4096))).toBe(true);
        expect(pager.stats()).toMatchObject({ bytes: r.length, failures: 0 });
        pager.close();
      } finally {
        snap.remove();
      }
    }));

  it('a pipe (by fd or by path) is refused at serve(): ESPIPE, a file source is read at offsets', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 2);
      h.uffd.register(r.mapping, ['missing']);
      const snap = snapshotFile(Buffer.alloc(0));
      const fifo = `${snap.path}.fifo`;
      execFileSync('mkfifo', [fifo]);
      // O_RDWR: opening a FIFO so does not wait for the other end.
      const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
      try {
        const pager = pagerFor(h);
        expect(() => pager.serve(r.mapping, { kind: 'file', fd })).toThrow(expect.objectContaining({ code: 'ESPIPE', message: expect.stringMatching(/source\.fd is a pipe/) }));
        expect(() => pager.serve(r.mapping, { kind: 'file', path: fifo })).toThrow(expect.objectContaining({ code: 'ESPIPE', message: expect.stringMatching(/source\.path is a pipe/) }));
        expect(pager.ranges()).toEqual([]);
        pager.close();
      } finally {
        closeSync(fd);
        snap.remove();
      }
    }));
});
