// "No JavaScript call per fault" for the pager's non-JS sources, made
// falsifiable: the JavaScript thread spins synchronously (it cannot run a
// callback, a TSFN call or a promise job) while native threads fault on every
// page of a served range. The faults can only complete if the native reader
// thread resolves them itself. A child process, so that a regression hangs
// the child (killed by pid), not the test runner.
import { describe, expect, it } from 'vitest';
import { describeChild, resultOf, runScript } from './helpers/child';

const PAGES = 64;

describe('Pager native path', () => {
  async function spinWhileServing(kind: 'zero' | 'buffer' | 'file' | 'memoryFile' | 'function') {
    const r = await runScript(
      `
      const fs = require('node:fs'), os = require('node:os'), path = require('node:path');
      const { Userfaultfd, Mapping, MemoryFile, Pager, PAGE_SIZE } = lib;
      const pages = ${PAGES}, length = pages * PAGE_SIZE;
      const data = Buffer.alloc(length);
      for (let i = 0; i < length; i += 4) data.writeUInt32LE((0x1000 + i) >>> 0, i);
      const uffd = Userfaultfd.open();
      const m = Mapping.anonymous(length);
      uffd.register(m, ['missing']);
      const pager = Pager.create(uffd, { readAhead: false });
      let source, cleanup = () => {};
      switch (${JSON.stringify(kind)}) {
        case 'zero': source = { kind: 'zero' }; data.fill(0); break;
        case 'buffer': source = { kind: 'buffer', buffer: data }; break;
        case 'file': {
          const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uffd-native-'));
          fs.writeFileSync(path.join(dir, 'snap'), data);
          source = { kind: 'file', path: path.join(dir, 'snap') };
          cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
          break;
        }
        case 'function': source = { kind: 'function', read: (address, len, { offset }) => data.subarray(offset, offset + len) }; break;
        case 'memoryFile': {
          const file = MemoryFile.memfd(length);
          const alias = file.map();
          data.copy(alias.buffer());
          alias.unmap();
          source = { kind: 'memoryFile', file };
          break;
        }
      }
      pager.serve(m, source);
      // Two native threads touch every page (one forwards, one from the middle).
      const touches = [testing.touchPages(m.address, length), testing.touchPages(m.address + length / 2, length / 2)];
      // Spin: no callback, no TSFN call, no microtask can run on this thread now.
      const deadline = Date.now() + (${JSON.stringify(kind)} === 'function' ? 500 : 15000);
      let seen = 0;
      while ((seen = pager.stats().bytes) < length && Date.now() < deadline) {}
      const servedWhileSpinning = seen;
      (async () => {
        await Promise.all(touches);
        const ok = Buffer.from(m.buffer()).equals(data);
        const s = pager.stats();
        console.log('RESULT ' + JSON.stringify({ servedWhileSpinning, ok, faults: s.faults, bytes: s.bytes, functionFaults: s.functionFaults }));
        pager.close(); uffd.close(); m.unmap(); cleanup();
      })();`,
      40_000,
    );
    return r;
  }

  it.each(['zero', 'buffer', 'file', 'memoryFile'] as const)('%s source: every fault is served while the JavaScript thread never yields', async (kind) => {
    const r = await spinWhileServing(kind);
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect(r.code, describeChild(r)).toBe(0);
    const res = resultOf<{ servedWhileSpinning: number; ok: boolean; faults: number; bytes: number; functionFaults: number }>(r);
    // Both threads fault on the second half: a page may be reported twice (EEXIST, success), never mapped twice.
    expect(res).toEqual({ servedWhileSpinning: PAGES * 4096, ok: true, faults: res.faults, bytes: PAGES * 4096, functionFaults: 0 });
    expect(res.faults).toBeGreaterThanOrEqual(PAGES);
  });

  it('the control: a function source needs the JavaScript thread, so nothing is served while it spins, all of it once it yields', async () => {
    const r = await spinWhileServing('function');
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect(r.code, describeChild(r)).toBe(0);
    const res = resultOf<{ servedWhileSpinning: number; ok: boolean; bytes: number; functionFaults: number }>(r);
    expect(res.servedWhileSpinning).toBe(0);
    expect(res.ok).toBe(true);
    expect(res.bytes).toBe(PAGES * 4096);
    expect(res.functionFaults).toBeGreaterThanOrEqual(PAGES);
  });
});
