// touchCatchingSigbus() (userfaultfd/testing): a native thread that
// survives SIGBUS page by page and reports it. Real signals from a file
// truncated under its mapping, from UFFDIO_POISON and from
// UFFD_FEATURE_SIGBUS; the retry mode that waits for the handler; and, in
// child processes, that a SIGBUS anywhere else still ends the process (or
// reaches the handler that was there before ours).
import { ftruncateSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Mapping, MemoryFile, PAGE_SIZE, Userfaultfd } from '../lib';
import { SIGBUS_CODES, touchCatchingSigbus, type SigbusSignal } from '../lib/testing';
import { describeChild, DIST, expectCleanExit, resultOf, runScript } from './helpers/child';
import { page, useCleanup } from './helpers/events';

const { track } = useCleanup();
const P = PAGE_SIZE;

/** A shared memfd mapping of `pages` pages whose file is then cut to `keep` pages: the rest raise SIGBUS. */
function truncated(pages: number, keep: number): Mapping {
  const file = track(MemoryFile.memfd(pages * P));
  const m = track(file.map());
  for (let i = 0; i < pages; i++) m.buffer().writeUInt32LE(100 + i, i * P);
  ftruncateSync(file.fd, keep * P);
  return m;
}

describe('touchCatchingSigbus', () => {
  it('rejects bad arguments with TypeError / RangeError', () => {
    const a = 0x10000;
    const bad: [unknown[], ErrorConstructor, RegExp][] = [
      [['x', P], TypeError, /address must be an integer/],
      [[0, P], RangeError, /address must be between 1/],
      [[a, 0], RangeError, /length must be between 1/],
      [[a, P, 'o'], TypeError, /options must be an object/],
      [[a, P, { stride: 2 }], RangeError, /options\.stride must be between 4/],
      [[a, P, { writeBack: 1 }], TypeError, /options\.writeBack must be a boolean/],
      [[a, P, { scan: 'yes' }], TypeError, /options\.scan must be a boolean/],
      [[a, P, { ref: null }], TypeError, /options\.ref must be a boolean/],
      [[a, P, { onSigbus: 'copy' }], TypeError, /options\.onSigbus must be a function/],
      [[a, P, { maxSignalsPerPage: 0 }], RangeError, /options\.maxSignalsPerPage must be between 1/],
      [[a, P, { maxSignalsPerPage: 1.5 }], TypeError, /options\.maxSignalsPerPage must be an integer/],
    ];
    for (const [args, type, message] of bad) {
      const call = () => (touchCatchingSigbus as (...a: unknown[]) => unknown)(...args);
      expect(call, JSON.stringify(args)).toThrow(type);
      expect(call).toThrow(message);
    }
  });

  it('pages past the end of a truncated file raise one SIGBUS each (BUS_ADRERR at the page); the others are read', async () => {
    const m = truncated(4, 2);
    const r = await touchCatchingSigbus(m.address, m.length);
    expect(r.tid).toBeGreaterThan(0);
    expect(r.tid).not.toBe(process.pid);
    expect([...r.values]).toEqual([100, 101, 0, 0]);
    expect([...r.readSignals]).toEqual([0, 0, 1, 1]);
    expect([...r.writeSignals]).toEqual([0, 0, 0, 0]);
    expect([...r.signals]).toEqual([0, 0, 1, 1]);
    expect([...r.codes]).toEqual([0, 0, SIGBUS_CODES.BUS_ADRERR, SIGBUS_CODES.BUS_ADRERR]);
    expect([...r.faultAddresses]).toEqual([0, 0, m.address + 2 * P, m.address + 3 * P]);
    expect([...r.completed]).toEqual([1, 1, 0, 0]);
  });

  it('a page poisoned with UFFDIO_POISON raises SIGBUS; its neighbour, copied, is read whole', async () => {
    const uffd = track(Userfaultfd.open({ features: ['POISON'] }));
    const m = track(Mapping.anonymous(2 * P));
    uffd.register(m, ['missing']);
    expect(uffd.poison(m.address, P)).toEqual({ bytes: P, status: 'complete' });
    const filled = page(0);
    filled.writeUInt32LE(9, 0);
    filled.writeUInt32LE(9, 100);
    uffd.copy(m.address + P, filled);
    const r = await touchCatchingSigbus(m.address, m.length, { scan: true });
    expect([...r.signals]).toEqual([1, 0]);
    expect([SIGBUS_CODES.BUS_MCEERR_AR, SIGBUS_CODES.BUS_ADRERR]).toContain(r.codes[0]);
    expect(r.faultAddresses[0]).toBe(m.address);
    expect([...r.values]).toEqual([0, 9]);
    expect([...r.nonzeroWords]).toEqual([0, 2]);
  });

  it('retry mode: with UFFD_FEATURE_SIGBUS each page signals once on the read and once on the write-back, as the handler resolves it', async () => {
    const uffd = track(Userfaultfd.open({ features: ['SIGBUS', 'PAGEFAULT_FLAG_WP'] }));
    const m = track(Mapping.anonymous(6 * P));
    uffd.register(m, ['missing', 'wp']);
    const seen: SigbusSignal[] = [];
    const r = await touchCatchingSigbus(m.address, m.length, {
      writeBack: true,
      onSigbus: async (s) => {
        seen.push(s);
        await new Promise((resolve) => setImmediate(resolve));
        if (s.write) uffd.writeProtect(s.address, P, false);
        else uffd.copy(s.address, page(200 + s.index), { writeProtect: true });
      },
    });
    expect([...r.readSignals]).toEqual([1, 1, 1, 1, 1, 1]);
    expect([...r.writeSignals]).toEqual([1, 1, 1, 1, 1, 1]);
    expect([...r.values]).toEqual([200, 201, 202, 203, 204, 205]);
    expect([...r.completed]).toEqual([1, 1, 1, 1, 1, 1]);
    expect(seen.map((s) => [s.index, s.write, s.count])).toEqual(
      [0, 1, 2, 3, 4, 5].flatMap((i) => [[i, false, 1], [i, true, 2]]),
    );
    for (const s of seen) {
      expect(s.address).toBe(m.address + s.index * P);
      expect(s.faultAddress).toBe(s.address);
      expect(s.code).toBe(SIGBUS_CODES.BUS_ADRERR);
    }
  });

  it('retry mode: a page never resolved is given up after maxSignalsPerPage signals', async () => {
    const m = truncated(3, 1);
    const calls: number[] = [];
    const r = await touchCatchingSigbus(m.address, m.length, { maxSignalsPerPage: 3, onSigbus: (s) => void calls.push(s.index) });
    expect([...r.readSignals]).toEqual([0, 3, 3]);
    expect([...r.completed]).toEqual([1, 0, 0]);
    // The last signal of a page is not posted: the thread moves on at once.
    expect(calls).toEqual([1, 1, 2, 2]);
  });

  it('retry mode: a handler that throws or rejects stops the thread, and the touch rejects with its error', async () => {
    const m = truncated(4, 0);
    const thrown = new Error('handler failed');
    await expect(touchCatchingSigbus(m.address, m.length, { onSigbus: () => { throw thrown; } })).rejects.toBe(thrown);
    const rejected = new RangeError('async handler failed');
    let calls = 0;
    await expect(
      touchCatchingSigbus(m.address, m.length, {
        onSigbus: async (s) => {
          calls++;
          if (s.index === 1) throw rejected;
        },
      }),
    ).rejects.toBe(rejected);
    // Page 0 was retried until given up (8 signals, 7 posted), then page 1 failed.
    expect(calls).toBe(8);
  });
});

describe('touchCatchingSigbus: a SIGBUS elsewhere is not swallowed', () => {
  // Each script first runs a catching touch (which installs the handler),
  // then raises a SIGBUS that is not an armed access.
  const prelude = `
const fs = require('node:fs');
const { MemoryFile, PAGE_SIZE: P } = lib;
const file = MemoryFile.memfd(2 * P);
const m = file.map();
fs.ftruncateSync(file.fd, P);
const caught = () => testing.touchCatchingSigbus(m.address + P, P);
`;

  it('on another native thread: the process dies of SIGBUS', async () => {
    const r = await runScript(`${prelude}
caught().then(async (t) => {
  console.log('caught ' + t.signals[0]);
  await testing.touchPages(m.address + P, 4);
  console.log('survived');
});`);
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect(r.stdout).toContain('caught 1');
    expect(r.stdout).not.toContain('survived');
    expect(r.signal, describeChild(r)).toBe('SIGBUS');
  });

  it('on the JavaScript thread (a view of the truncated page): the process dies of SIGBUS', async () => {
    const r = await runScript(`${prelude}
caught().then(() => {
  console.log('caught');
  const v = m.buffer(P, 4)[0];
  console.log('survived ' + v);
});`);
    expect(r.stdout).toContain('caught');
    expect(r.stdout).not.toContain('survived');
    expect(r.signal, describeChild(r)).toBe('SIGBUS');
  });

  it('sent with kill(): the process dies of SIGBUS', async () => {
    const r = await runScript(`${prelude}
caught().then(() => {
  console.log('caught');
  process.kill(process.pid, 'SIGBUS');
  setTimeout(() => console.log('survived'), 2000);
});`);
    expect(r.stdout).toContain('caught');
    expect(r.stdout).not.toContain('survived');
    expect(r.signal, describeChild(r)).toBe('SIGBUS');
  });

  it('sent with kill(): a handler installed before ours (a process.on listener) still gets it', async () => {
    const r = await runScript(`${prelude}
process.on('SIGBUS', () => { console.log('listener'); process.exit(0); });
caught().then((t) => {
  console.log('caught ' + t.signals[0]);
  process.kill(process.pid, 'SIGBUS');
  // Signal listeners do not keep the loop alive.
  setTimeout(() => console.log('no listener'), 5000);
});`);
    expect(r.stdout, describeChild(r)).toContain('caught 1');
    expect(r.stdout, describeChild(r)).toContain('listener');
    expect(r.code, describeChild(r)).toBe(0);
  });
});

describe('touchCatchingSigbus in a Worker', () => {
  it('worker.terminate() while the thread waits for onSigbus: the thread ends, the process exits cleanly', async () => {
    const r = await runScript(`
const { Worker } = require('node:worker_threads');
const { readdirSync } = require('node:fs');
const threads = () => readdirSync('/proc/self/task').length;
const before = threads();
const worker = new Worker(\`
  const { parentPort } = require('node:worker_threads');
  const fs = require('node:fs');
  const { MemoryFile } = require(${JSON.stringify(`${DIST}/index.js`)});
  const { touchCatchingSigbus } = require(${JSON.stringify(`${DIST}/testing/index.js`)});
  const file = MemoryFile.memfd(4096);
  const m = file.map();
  fs.ftruncateSync(file.fd, 0);
  touchCatchingSigbus(m.address, 4096, { onSigbus: () => { parentPort.postMessage('signalled'); return new Promise(() => {}); } });
\`, { eval: true });
worker.on('message', async () => {
  const during = threads();
  const code = await worker.terminate();
  let tries = 0;
  const settle = () => {
    if (threads() > before && tries++ < 200) return setTimeout(settle, 10);
    console.log('RESULT ' + JSON.stringify({ code, before, during, after: threads() }));
  };
  settle();
});`);
    expectCleanExit(r);
    const out = resultOf<{ code: number; before: number; during: number; after: number }>(r);
    expect(out.code).toBe(1);
    expect(out.during).toBeGreaterThan(out.before);
    // The Worker's threads and the waiting touch thread are gone.
    expect(out.after).toBe(out.before);
  });
});
