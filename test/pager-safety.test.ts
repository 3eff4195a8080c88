// What could hang or crash, each in a child process killed by pid on
// timeout: the 'poison' failure policy (the faulting thread gets SIGBUS),
// closing with faults pending, exit with faults pending, and a Worker that
// is terminated while its pager serves.
import { describe, expect, it } from 'vitest';
import { describeChild, expectCleanExit, jsonLines, runScript } from './helpers/child';

const COMMON = `
const { Userfaultfd, Mapping, Pager, PAGE_SIZE } = lib;
const { touchPages } = testing;
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const out = (o) => console.log(JSON.stringify(o));
`;

describe('Pager safety', () => {
  it('poison: a function that throws gives the faulting thread SIGBUS, after reporting the failure', async () => {
    const r = await runScript(`${COMMON}
      const uffd = Userfaultfd.open();
      const m = Mapping.anonymous(2 * PAGE_SIZE);
      uffd.register(m, ['missing']);
      const pager = Pager.create(uffd);
      pager.on('failure', (f) => out({ failure: f.address === m.address, resolvedAs: f.resolvedAs, message: f.cause.message }));
      pager.serve(m, { kind: 'function', read: () => { throw new Error('snapshot server down'); } });
      touchPages(m.address, m.length);
    `);
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect(r.signal, describeChild(r)).toBe('SIGBUS');
    // The failure may or may not be printed before the signal ends the process.
    for (const line of jsonLines(r)) expect(line).toEqual({ failure: true, resolvedAs: 'poison', message: 'snapshot server down' });
  });

  it('poison: a file shorter than the range serves what it has, then SIGBUS', async () => {
    const r = await runScript(`${COMMON}
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pager-short-'));
      const file = path.join(dir, 'snap');
      const data = Buffer.alloc(2 * PAGE_SIZE);
      data.writeUInt32LE(111, 0);
      data.writeUInt32LE(222, PAGE_SIZE);
      fs.writeFileSync(file, data);
      const uffd = Userfaultfd.open();
      const m = Mapping.anonymous(4 * PAGE_SIZE);
      uffd.register(m, ['missing']);
      const pager = Pager.create(uffd);
      pager.on('failure', (f) => out({ failure: (f.address - m.address) / PAGE_SIZE, code: f.cause.code }));
      pager.serve(m, { kind: 'file', path: file });
      fs.rmSync(dir, { recursive: true });
      touchPages(m.address, 2 * PAGE_SIZE).then((t) => {
        out({ values: [...t.values] });
        touchPages(m.address + 2 * PAGE_SIZE, PAGE_SIZE);
      });
    `);
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect(r.signal, describeChild(r)).toBe('SIGBUS');
    expect(jsonLines(r)[0], describeChild(r)).toEqual({ values: [111, 222] });
    for (const line of jsonLines(r).slice(1)) expect(line).toEqual({ failure: 2, code: 'ERR_PAGER_SHORT_READ' });
  });

  it('close() with a function fault pending: the fault comes back as an event; uffd.close() with one pending: no hang', async () => {
    const r = await runScript(`${COMMON}
      (async () => {
        const uffd = Userfaultfd.open();
        const m = Mapping.anonymous(PAGE_SIZE);
        uffd.register(m, ['missing']);
        const pager = Pager.create(uffd);
        let requested;
        const asked = new Promise((resolve) => (requested = resolve));
        pager.serve(m, { kind: 'function', read: () => { requested(); return new Promise(() => {}); } });
        const touch = touchPages(m.address, PAGE_SIZE);
        await asked;
        pager.close();
        const events = uffd.events();
        const e = (await events.next()).value;
        const page = Buffer.alloc(PAGE_SIZE);
        page.writeUInt32LE(4242, 0);
        uffd.copy(e.address, page);
        out({ event: e.type, values: [...(await touch).values] });

        const m2 = Mapping.anonymous(PAGE_SIZE);
        uffd.register(m2, ['missing']);
        const pager2 = Pager.create(uffd);
        const asked2 = new Promise((resolve) => (requested = resolve));
        pager2.serve(m2, { kind: 'function', read: () => { requested(); return new Promise(() => {}); } });
        const touch2 = touchPages(m2.address, PAGE_SIZE);
        await asked2;
        await events.return();
        uffd.close();
        out({ pagerClosed: pager2.closed, values: [...(await touch2).values] });
      })();
    `);
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect(r.code, describeChild(r)).toBe(0);
    expect(jsonLines(r)).toEqual([
      { event: 'pagefault', values: [4242] },
      { pagerClosed: true, values: [0] },
    ]);
  });

  it('process.exit() with function faults pending: no hang', async () => {
    const r = await runScript(`${COMMON}
      const uffd = Userfaultfd.open();
      const m = Mapping.anonymous(4 * PAGE_SIZE);
      uffd.register(m, ['missing']);
      const pager = Pager.create(uffd);
      pager.serve(m, { kind: 'function', read: () => { setImmediate(() => process.exit(3)); return new Promise(() => {}); } });
      touchPages(m.address, m.length, { ref: false });
      setInterval(() => {}, 1000);
    `);
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect(r.code, describeChild(r)).toBe(3);
  });

  it('a Worker terminated while its pager serves faults: no abort, no hang', async () => {
    const r = await runScript(`${COMMON}
      const { Worker } = require('node:worker_threads');
      const workerSource = ${JSON.stringify(`
        const { parentPort } = require('node:worker_threads');
        const lib = require(process.cwd() + '/dist/index.js');
        const testing = require(process.cwd() + '/dist/testing/index.js');
        const { Userfaultfd, Mapping, Pager, PAGE_SIZE } = lib;
        const uffd = Userfaultfd.open();
        const pages = 4096;
        const a = Mapping.anonymous(pages * PAGE_SIZE);
        const b = Mapping.anonymous(pages * PAGE_SIZE);
        uffd.register(a, ['missing']);
        uffd.register(b, ['missing']);
        const pager = Pager.create(uffd, { readAhead: false });
        pager.serve(a, { kind: 'buffer', buffer: Buffer.alloc(a.length, 7) });
        pager.serve(b, { kind: 'function', read: (address, length) => new Promise((r) => setTimeout(() => r(Buffer.alloc(length, 9)), 1)) });
        pager.prefetch(a);
        testing.touchPages(a.address, a.length, { ref: false });
        testing.touchPages(b.address, b.length, { ref: false });
        parentPort.postMessage('serving');
        setInterval(() => {}, 1000);
      `)};
      const w = new Worker(workerSource, { eval: true });
      w.on('message', async () => {
        await new Promise((r) => setTimeout(r, 50));
        await w.terminate();
        out({ terminated: true });
      });
      w.on('error', (e) => out({ error: String(e) }));
    `);
    expectCleanExit(r);
    expect(jsonLines(r)).toEqual([{ terminated: true }]);
  });

  it('a serving pager keeps the process alive; unref() lets it end', async () => {
    const script = (unref: boolean) => `${COMMON}
      const uffd = Userfaultfd.open();
      const m = Mapping.anonymous(PAGE_SIZE);
      uffd.register(m, ['missing']);
      const pager = Pager.create(uffd);
      pager.serve(m, { kind: 'zero' });
      ${unref ? 'pager.unref();' : ''}
      out({ serving: true });
    `;
    const held = await runScript(script(false), 1500);
    expect(held.timedOut, describeChild(held)).toBe(true);
    const free = await runScript(script(true));
    expect(free.timedOut, describeChild(free)).toBe(false);
    expect(free.code, describeChild(free)).toBe(0);
  });
});
