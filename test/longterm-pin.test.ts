// longtermPin() and probeLongtermPin() (userfaultfd/testing): a real
// long-term pin through io_uring fixed buffers. The pin is seen where the
// kernel shows it: VmPin in /proc/self/status (io_uring accounts the pages
// to the pinning mm), and fork(), which copies a pinned private page at once
// (early CoW) instead of sharing it with the child.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Mapping, PAGE_SIZE, readPagemap } from '../lib';
import { forkChild, longtermPin, MAX_LONGTERM_PIN_BYTES, probeLongtermPin, type LongtermPin } from '../lib/testing';
import { DIST, describeChild, resultOf, root, runScript } from './helpers/child';

/** Kilobytes pinned by this process (io_uring accounts its fixed buffers here). */
function vmPinKb(): number {
  const m = /^VmPin:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error('no VmPin line in /proc/self/status');
  return Number(m[1]);
}

const mappings: Mapping[] = [];
const pins: LongtermPin[] = [];
afterEach(() => {
  for (const p of pins.splice(0)) p.release();
  for (const m of mappings.splice(0)) m.unmap();
});
function anonymous(length: number): Mapping {
  const m = Mapping.anonymous(length);
  mappings.push(m);
  return m;
}
function pin(address: number, length: number): LongtermPin {
  const p = longtermPin(address, length);
  pins.push(p);
  return p;
}

describe('longtermPin', () => {
  it('rejects bad arguments with TypeError / RangeError before any system call', () => {
    const bad: [unknown, unknown, ErrorConstructor, RegExp][] = [
      ['0x1000', PAGE_SIZE, TypeError, /address must be an integer \(got '0x1000'\)/],
      [4096.5, PAGE_SIZE, TypeError, /address must be an integer/],
      [0, PAGE_SIZE, RangeError, /address must be between 1 and/],
      [0x1000, undefined, TypeError, /length must be an integer/],
      [0x1000, 0, RangeError, /length must be between 1 and 68719476736 \(got 0\)/],
      [0x1000, MAX_LONGTERM_PIN_BYTES + 1, RangeError, /length must be between 1 and 68719476736/],
    ];
    for (const [address, length, type, message] of bad) {
      expect(() => longtermPin(address as number, length as number)).toThrow(type);
      expect(() => longtermPin(address as number, length as number)).toThrow(message);
    }
  });

  describe('where io_uring works', () => {
    beforeEach((ctx) => {
      const support = probeLongtermPin();
      if (!support.ok) ctx.skip(`skip: ${support.reason}`);
    });

    it('probeLongtermPin() says so, once per process', () => {
      const support = probeLongtermPin();
      expect(support).toEqual({ ok: true, mechanism: 'io_uring' });
      expect(probeLongtermPin()).toBe(support);
    });

    it('pins until release(); release() is idempotent, and Symbol.dispose releases', () => {
      const m = anonymous(16 * PAGE_SIZE);
      const before = vmPinKb();
      const p = pin(m.address, m.length);
      expect(p).toMatchObject({ address: m.address, length: m.length, released: false });
      expect(p.fd).toBeGreaterThan(2);
      expect(vmPinKb() - before).toBe(m.length / 1024);
      p.release();
      expect(p).toMatchObject({ released: true, fd: -1 });
      expect(vmPinKb()).toBe(before);
      p.release();
      expect(vmPinKb()).toBe(before);
      {
        using disposed = longtermPin(m.address, PAGE_SIZE);
        expect(disposed.released).toBe(false);
        expect(vmPinKb() - before).toBe(4);
      }
      expect(vmPinKb()).toBe(before);
    });

    it('pins an absent page by faulting it in, and several pins of one range add up', () => {
      const m = anonymous(2 * PAGE_SIZE);
      const before = vmPinKb();
      const a = pin(m.address, m.length);
      const b = pin(m.address + PAGE_SIZE, PAGE_SIZE);
      expect(vmPinKb() - before).toBe(12);
      a.release();
      expect(vmPinKb() - before).toBe(4);
      b.release();
      expect(vmPinKb()).toBe(before);
    });

    it('a pinned private page is copied at fork() (early CoW); unpinned, it is shared with the child', async () => {
      const m = anonymous(PAGE_SIZE);
      m.buffer().writeUInt32LE(42, 0);
      const parentPfn = readPagemap(m.address, PAGE_SIZE)[0].pfn;
      const forkAndLook = async () => {
        const r = await forkChild([
          { op: 'pagemap', address: m.address },
          { op: 'read', address: m.address, length: 4 },
        ]).exited;
        expect(r.exitCode).toBe(0);
        expect([...r.values]).toEqual([42]);
        return r.pagemap![0];
      };
      const p = pin(m.address, PAGE_SIZE);
      const pinned = await forkAndLook();
      expect(pinned.present && pinned.exclusive).toBe(true);
      if (parentPfn) expect(pinned.pfn).not.toBe(parentPfn);
      p.release();
      const unpinned = await forkAndLook();
      expect(unpinned.present).toBe(true);
      expect(unpinned.exclusive).toBe(false);
      if (parentPfn) expect(unpinned.pfn).toBe(parentPfn);
    });

    it('errno errors name the io_uring call and the range: unmapped memory, read-only memory (the pin is writable)', () => {
      // Below vm.mmap_min_addr: never mapped.
      expect(() => longtermPin(PAGE_SIZE, PAGE_SIZE)).toThrow(
        expect.objectContaining({ code: 'EFAULT', errno: -14, syscall: 'io_uring_register', address: PAGE_SIZE, length: PAGE_SIZE }),
      );
      const m = anonymous(PAGE_SIZE);
      m.protect('read');
      expect(() => longtermPin(m.address, PAGE_SIZE)).toThrow(expect.objectContaining({ code: 'EFAULT', syscall: 'io_uring_register', address: m.address }));
    });

    it('pinning a write-protected registered page from the JS thread: a WP fault the reader resolves (no hang)', async () => {
      // A writable pin of a protected page is a WP fault of the pinning
      // thread; on the JS thread only the reader can resolve it (jsThreadFaults).
      const r = await runScript(`
        const { Userfaultfd, Mapping, PAGE_SIZE, readPagemap } = lib;
        (async () => {
          const uffd = Userfaultfd.open();
          const m = Mapping.anonymous(PAGE_SIZE);
          m.buffer().writeUInt32LE(1, 0);
          uffd.register(m, ['wp']);
          uffd.writeProtect(m.address, PAGE_SIZE, true);
          const events = uffd.events();
          const pin = testing.longtermPin(m.address, PAGE_SIZE);
          const e = (await events.next()).value;
          const out = { type: e.type, wp: e.wp, resolvedByReader: e.resolvedByReader, tid: e.threadId === process.pid, uffdWp: readPagemap(m.address, PAGE_SIZE)[0].uffdWp };
          pin.release();
          uffd.close();
          console.log('RESULT ' + JSON.stringify(out));
        })().catch((err) => { console.error(err); process.exit(1); });
      `);
      expect(r.timedOut, describeChild(r)).toBe(false);
      expect(r.code, describeChild(r)).toBe(0);
      expect(resultOf(r)).toEqual({ type: 'pagefault', wp: true, resolvedByReader: true, tid: true, uffdWp: false });
    });

    it("a Worker's pins are released when it is terminated", async () => {
      const worker = [
        "const { parentPort } = require('node:worker_threads');",
        `const lib = require(${JSON.stringify(join(DIST, 'index.js'))});`,
        `const testing = require(${JSON.stringify(join(DIST, 'testing', 'index.js'))});`,
        'const m = lib.Mapping.anonymous(8 * lib.PAGE_SIZE);',
        'testing.longtermPin(m.address, m.length);',
        "parentPort.postMessage('pinned');",
        'setInterval(() => {}, 1000);',
      ].join('\n');
      const r = await runScript(`
        const { Worker } = require('node:worker_threads');
        const { readFileSync } = require('node:fs');
        const vmPin = () => Number(/^VmPin:\\s+(\\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
        const before = vmPin();
        const w = new Worker(${JSON.stringify(worker)}, { eval: true });
        w.once('message', async () => {
          const pinned = vmPin() - before;
          await w.terminate();
          console.log('RESULT ' + JSON.stringify({ pinned, after: vmPin() - before }));
        });
      `);
      expect(r.code, describeChild(r)).toBe(0);
      expect(resultOf(r)).toEqual({ pinned: 32, after: 0 });
    });
  });

  // io_uring made unavailable to one process tree only, by strace's
  // syscall fault injection: the machine's io_uring stays as it is.
  describe('where io_uring is unavailable (strace fault injection)', () => {
    const strace = ['/usr/bin/strace', '/bin/strace'].find((p) => existsSync(p));
    function underStrace(inject: string, command: string[], timeoutMs = 60_000) {
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && k !== 'NODE_OPTIONS'));
      const r = spawnSync(
        strace!,
        ['-f', '--seccomp-bpf', '-qq', '-o', '/dev/null', '-e', 'trace=io_uring_setup,io_uring_register', '-e', `inject=${inject}`, ...command],
        { cwd: root, env, encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' },
      );
      return { code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', timedOut: r.error !== undefined || r.signal === 'SIGKILL' };
    }
    const probe = `console.log('RESULT ' + JSON.stringify((({ ok, reason, error }) => ({ ok, reason, code: error && error.code, syscall: error && error.syscall }))(require(${JSON.stringify(join(DIST, 'testing', 'index.js'))}).probeLongtermPin())));`;

    it('probeLongtermPin() gives the precise reason: ENOSYS, EPERM (sysctl or seccomp), ENOMEM (memlock)', (ctx) => {
      if (!strace) ctx.skip('skip: strace is not installed (apt-get install strace)');
      const disabled = readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim();
      const eperm =
        disabled === '2' ? /sysctl kernel\.io_uring_disabled = 2/ : disabled === '1' ? /kernel\.io_uring_group group \(sysctl kernel\.io_uring_disabled = 1\)/ : /refused \(a seccomp filter/;
      const cases: [string, object][] = [
        ['io_uring_setup:error=ENOSYS', { ok: false, code: 'ENOSYS', syscall: 'io_uring_setup', reason: 'io_uring is not in this kernel (CONFIG_IO_URING): io_uring_setup ENOSYS' }],
        ['io_uring_setup:error=EPERM', { ok: false, code: 'EPERM', syscall: 'io_uring_setup', reason: expect.stringMatching(eperm) }],
        ['io_uring_register:error=ENOMEM', { ok: false, code: 'ENOMEM', syscall: 'io_uring_register', reason: expect.stringMatching(/RLIMIT_MEMLOCK/) }],
      ];
      for (const [inject, expected] of cases) {
        const r = underStrace(inject, [process.execPath, '-e', probe]);
        if (r.code !== 0 && /ptrace|PTRACE|Operation not permitted/.test(r.stderr)) ctx.skip(`skip: strace cannot trace here: ${r.stderr.trim()}`);
        expect(r.code, describeChild(r)).toBe(0);
        expect(resultOf(r), inject).toEqual(expected);
      }
    });

    it("forkChild's 'pin' step names the call that failed: io_uring_setup, io_uring_register", (ctx) => {
      if (!strace) ctx.skip('skip: strace is not installed (apt-get install strace)');
      const script = `
        const lib = require(${JSON.stringify(join(DIST, 'index.js'))});
        const testing = require(${JSON.stringify(join(DIST, 'testing', 'index.js'))});
        const m = lib.Mapping.anonymous(lib.PAGE_SIZE);
        testing.forkChild([{ op: 'pin', address: m.address, length: lib.PAGE_SIZE }]).exited.then((r) => {
          const e = r.failedStep && r.failedStep.error;
          console.log('RESULT ' + JSON.stringify({ exitCode: r.exitCode, index: r.failedStep && r.failedStep.index, code: e && e.code, syscall: e && e.syscall }));
        });`;
      for (const [inject, syscall, code] of [
        ['io_uring_setup:error=ENOSYS', 'io_uring_setup', 'ENOSYS'],
        ['io_uring_register:error=ENOMEM', 'io_uring_register', 'ENOMEM'],
      ]) {
        const r = underStrace(inject, [process.execPath, '-e', script]);
        expect(r.code, describeChild(r)).toBe(0);
        expect(resultOf(r), inject).toEqual({ exitCode: 125, index: 0, code, syscall });
      }
    });

    it('the wp-fork-pin parity cases skip, each with that reason', (ctx) => {
      if (!strace) ctx.skip('skip: strace is not installed (apt-get install strace)');
      const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
      const r = underStrace('io_uring_setup:error=ENOSYS', [process.execPath, vitest, 'run', 'test/parity/wp-fork-pin.test.ts', '--reporter=verbose'], 120_000);
      expect(r.timedOut, describeChild(r)).toBe(false);
      expect(r.code, describeChild(r)).toBe(0);
      const reason = 'skip: no long-term pin here: io_uring is not in this kernel (CONFIG_IO_URING): io_uring_setup ENOSYS';
      const skipped = r.stdout.split('\n').filter((l) => l.includes(`[${reason}]`));
      expect(skipped, describeChild(r)).toHaveLength(10);
      expect(r.stdout.replace(/\x1b\[[0-9;]*m/g, '')).toMatch(/Tests\s+10 skipped \(10\)/);
    });
  });
});
