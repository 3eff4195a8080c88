// Asynchronous read-ahead (readAhead.async): once faults are sequential, the
// reader thread fills the next window in the background, all of it but the
// first page (the marker), whose fault says the thread got there and
// schedules the window after. Checked: the exact schedule (a thread that
// waits for each window to be filled before going on faults once per window,
// on its marker, and every other page is filled ahead of it), a free-running
// thread, the races (a prefetch on the same pages: each byte mapped once;
// REMOVE: nothing filled after it), and close()/Worker teardown with windows
// still to fill (child processes: a thread left blocked would hang).
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE, readPagemap } from '../lib/index';
import { describeChild, expectCleanExit, jsonLines, resultOf, runScript } from './helpers/child';
import { withHarness } from './helpers/harness';
import { SEED, firstWords, pagerFor, pattern, snapshotFile } from './helpers/pager';

const EVENTS = { features: ['EVENT_REMOVE', 'EVENT_REMAP', 'EVENT_UNMAP'] as const };

/** Waits until every page of [address, address + length) is present (filled by the background), or throws. */
async function waitPresent(address: number, length: number): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (readPagemap(address, length).every((e) => e.present)) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const missing = readPagemap(address, length).filter((e) => !e.present).length;
  throw new Error(`the asynchronous read-ahead did not fill 0x${address.toString(16)}+0x${length.toString(16)} (${missing} pages missing after 10 s)`);
}

describe('Pager asynchronous read-ahead', () => {
  it('a thread that reaches each window after it was filled waits for one page per window: the marker', () =>
    withHarness(async (h) => {
      const pages = 1024;
      const r = h.region('anon', pages);
      h.uffd.register(r.mapping, ['missing']);
      const data = pattern(r.length, SEED + 50);
      // Windows of 16, 32, then 64 pages.
      const pager = pagerFor(h, { readAhead: { min: 16 * PAGE_SIZE, max: 64 * PAGE_SIZE, async: true } });
      pager.serve(r.mapping, { kind: 'buffer', buffer: data });
      const values: number[] = [];
      const touch = async (first: number, end: number): Promise<void> => {
        const t = await h.finished(h.touch(r.page(first), (end - first) * PAGE_SIZE));
        values.push(...t.values);
      };
      // A random fault (16 pages, now), a sequential one (32 pages, now; and
      // 64 pages from page 48 scheduled: all but page 48, the marker).
      await touch(0, 48);
      expect(pager.stats()).toMatchObject({ faults: 2, asyncReadAheadPages: expect.any(Number) });
      let windows = 0;
      for (let marker = 48; marker < pages; marker += 64) {
        const end = Math.min(marker + 64, pages);
        if (end > marker + 1) await waitPresent(r.page(marker + 1), (end - marker - 1) * PAGE_SIZE);
        expect(readPagemap(r.page(marker), PAGE_SIZE)[0].present).toBe(false);
        await touch(marker, end);
        windows++;
      }
      expect(values).toEqual(firstWords(data, PAGE_SIZE));
      expect(Buffer.from(r.mapping.buffer()).equals(data)).toBe(true);
      const s = pager.stats();
      // One fault per window, as without async (the fault is the thread's
      // only sign of progress); but it waited for 48 + 16 pages of 1024.
      expect(windows).toBe(16);
      expect(s.faults).toBe(2 + windows);
      expect(s.asyncReadAheadPages).toBe(pages - 48 - windows);
      expect(s.faults + s.readAheadPages).toBe(pages);
      expect(s.bytes).toBe(r.length);
      pager.close();
    }));

  it('a free-running sequential thread over a file: every byte right, most pages filled ahead of it', () =>
    withHarness(async (h) => {
      const pages = 4096;
      const r = h.region('anon', pages);
      h.uffd.register(r.mapping, ['missing']);
      const data = pattern(r.length, SEED + 51);
      const snap = snapshotFile(data);
      try {
        const pager = pagerFor(h, { readAhead: { async: true } });
        pager.serve(r.mapping, { kind: 'file', path: snap.path });
        const t = await h.finished(h.touch(r.mapping.address, r.length));
        expect([...t.values]).toEqual(firstWords(data, PAGE_SIZE));
        expect(Buffer.from(r.mapping.buffer()).equals(data)).toBe(true);
        const s = pager.stats();
        expect(s.faults + s.readAheadPages).toBe(pages);
        expect(s.bytes).toBe(r.length);
        // Whether the background stays ahead depends on the scheduler; that
        // it filled some pages first does not.
        expect(s.asyncReadAheadPages).toBeGreaterThan(0);
        expect(s.failures).toBe(0);
        pager.close();
      } finally {
        snap.remove();
      }
    }));

  it('with a prefetch and a second thread on the same pages: every byte right, each mapped once (EEXIST)', () =>
    withHarness(async (h) => {
      const pages = 4096;
      const r = h.region('anon', pages);
      h.uffd.register(r.mapping, ['missing']);
      const data = pattern(r.length, SEED + 52);
      const pager = pagerFor(h, { readAhead: { min: 16 * PAGE_SIZE, max: 256 * PAGE_SIZE, async: true } });
      pager.serve(r.mapping, { kind: 'buffer', buffer: data });
      const prefetch = pager.prefetch();
      const touches = [h.touch(r.mapping.address, r.length), h.touch(r.page(pages / 2), r.length / 2)];
      const [all, half] = await Promise.all(touches.map((t) => h.finished(t)));
      await prefetch;
      expect([...all.values]).toEqual(firstWords(data, PAGE_SIZE));
      expect([...half.values]).toEqual(firstWords(data.subarray(r.length / 2), PAGE_SIZE));
      expect(Buffer.from(r.mapping.buffer()).equals(data)).toBe(true);
      expect(pager.stats().bytes).toBe(r.length);
      pager.close();
    }));

  it('madvise(DONTNEED) ahead of the thread while a window is being filled: nothing is filled there afterwards (afterRemove zero)', () =>
    withHarness(async (h) => {
      const pages = 2048;
      const r = h.region('anon', pages);
      h.uffd.register(r.mapping, ['missing']);
      const data = pattern(r.length, SEED + 53);
      const pager = pagerFor(h, { readAhead: { min: 1 << 20, max: 4 << 20, async: true } });
      pager.serve(r.mapping, { kind: 'buffer', buffer: data });
      // 256 pages, then 512 pages and [769, 1792) scheduled (16 pieces);
      // then the JS thread discards everything from page 768 on, whether the
      // background got there or not.
      await h.finished(h.touch(r.mapping.address, 768 * PAGE_SIZE));
      r.mapping.madvise('DONTNEED', 768 * PAGE_SIZE, (pages - 768) * PAGE_SIZE);
      // Give a background that would go on every chance to (it must not:
      // the pages would be populated, with zero pages at least).
      await new Promise((resolve) => setTimeout(resolve, 100));
      pager.stats();
      expect(readPagemap(r.page(768), (pages - 768) * PAGE_SIZE).filter((e) => e.present).length).toBe(0);
      const t = await h.finished(h.touch(r.page(768), (pages - 768) * PAGE_SIZE));
      expect([...t.values]).toEqual(new Array(pages - 768).fill(0));
      const expected = Buffer.concat([data.subarray(0, 768 * PAGE_SIZE), Buffer.alloc((pages - 768) * PAGE_SIZE)]);
      expect(Buffer.from(r.mapping.buffer()).equals(expected)).toBe(true);
      pager.close();
    }, EVENTS));

  it('bad option: readAhead.async must be a boolean', () =>
    withHarness(async (h) => {
      expect(() => pagerFor(h, { readAhead: { async: 1 as never } })).toThrow(TypeError);
    }));

  it('close() while windows are still to be filled: no crash, no hang; pages are the file or (after uffd.close()) zeros', async () => {
    const r = await runScript(
      `
      const fs = require('node:fs'), os = require('node:os'), path = require('node:path');
      const { Userfaultfd, Mapping, Pager, PAGE_SIZE } = lib;
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pager-async-'));
      const file = path.join(dir, 'snap');
      process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
      const pages = 16384;
      const data = Buffer.alloc(pages * PAGE_SIZE, 0x33);
      for (let i = 0; i < pages; i++) data.writeUInt32LE(i + 1, i * PAGE_SIZE);
      fs.writeFileSync(file, data);
      const uffd = Userfaultfd.open();
      const m = Mapping.anonymous(pages * PAGE_SIZE);
      uffd.register(m, ['missing']);
      const pager = Pager.create(uffd, { readAhead: { async: true } });
      pager.serve(m, { kind: 'file', path: file });
      (async () => {
        const touch = testing.touchPages(m.address, m.length);
        // Close as soon as the background has filled something.
        while (pager.stats().asyncReadAheadPages === 0) await new Promise((r) => setImmediate(r));
        pager.close();
        const closedAt = Date.now();
        // Faults are the uffd's own now; nobody reads them: close the uffd,
        // which wakes the thread (the rest reads zeros).
        await new Promise((r) => setTimeout(r, 20));
        uffd.close();
        const t = await touch;
        const b = Buffer.from(m.buffer());
        let file = 0, zero = 0, other = 0;
        for (let i = 0; i < pages; i++) {
          const page = b.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
          if (page.equals(data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE))) file++;
          else if (page.every((x) => x === 0)) zero++;
          else other++;
        }
        console.log('RESULT ' + JSON.stringify({ other, all: file + zero === pages, touched: t.values.length }));
      })();`,
      60_000,
    );
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect(r.signal, describeChild(r)).toBe(null);
    expect(r.code, describeChild(r)).toBe(0);
    expect(resultOf(r)).toEqual({ other: 0, all: true, touched: 16384 });
  });

  it('a Worker terminated while its pager has windows to fill: no abort, no hang', async () => {
    const r = await runScript(`
      const { Worker } = require('node:worker_threads');
      const out = (o) => console.log(JSON.stringify(o));
      const workerSource = ${JSON.stringify(`
        const { parentPort } = require('node:worker_threads');
        const lib = require(process.cwd() + '/dist/index.js');
        const testing = require(process.cwd() + '/dist/testing/index.js');
        const { Userfaultfd, Mapping, Pager, PAGE_SIZE } = lib;
        const uffd = Userfaultfd.open();
        const m = Mapping.anonymous(16384 * PAGE_SIZE);
        uffd.register(m, ['missing']);
        const pager = Pager.create(uffd, { readAhead: { async: true } });
        pager.serve(m, { kind: 'buffer', buffer: Buffer.alloc(m.length, 7) });
        testing.touchPages(m.address, m.length, { ref: false });
        const wait = () => (pager.stats().asyncReadAheadPages > 0 ? parentPort.postMessage('filling') : setImmediate(wait));
        wait();
        setInterval(() => {}, 1000);
      `)};
      const w = new Worker(workerSource, { eval: true });
      w.on('message', async () => {
        await w.terminate();
        out({ terminated: true });
      });
      w.on('error', (e) => out({ error: String(e) }));
    `);
    expectCleanExit(r);
    expect(jsonLines(r)).toEqual([{ terminated: true }]);
  });
});
