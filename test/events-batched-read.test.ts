// "Events are read in batches", made falsifiable: eight faults wait in the
// kernel while reading is paused; on resume the reader thread must take them
// with one read() of several 32-byte uffd_msg records, not one read() each.
// strace records the reads of the uffd's fd in a child process.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DIST, describeChild, resultOf, root } from './helpers/child';

const strace = ['/usr/bin/strace', '/bin/strace'].find((p) => existsSync(p));
const PAGES = 8;

const script = `
const fs = require('node:fs');
const lib = require(${JSON.stringify(join(DIST, 'index.js'))});
const testing = require(${JSON.stringify(join(DIST, 'testing', 'index.js'))});
const inFaults = () => fs.readdirSync('/proc/self/task').filter((t) => { try { return fs.readFileSync('/proc/self/task/' + t + '/wchan', 'utf8') === 'handle_userfault'; } catch { return false; } }).length;
(async () => {
  const { Userfaultfd, Mapping, PAGE_SIZE } = lib;
  const uffd = Userfaultfd.open();
  const m = Mapping.anonymous(${PAGES} * PAGE_SIZE);
  uffd.register(m, ['missing']);
  uffd.pauseReading();
  const touches = [];
  for (let i = 0; i < ${PAGES}; i++) touches.push(testing.touchPages(m.address + i * PAGE_SIZE, PAGE_SIZE));
  while (inFaults() < ${PAGES}) await new Promise((r) => setTimeout(r, 2));
  uffd.resumeReading();
  let n = 0;
  for await (const e of uffd.events()) { uffd.zeropage(e.address, PAGE_SIZE); if (++n === ${PAGES}) break; }
  await Promise.all(touches);
  console.log('RESULT ' + JSON.stringify({ fd: uffd.fd, faults: n }));
  uffd.close();
})();`;

describe('the reader reads events in batches', () => {
  it(`${PAGES} pending faults are taken by one read() of several messages`, (ctx) => {
    if (!strace) ctx.skip('skip: strace is not installed (apt-get install strace)');
    const dir = mkdtempSync(join(tmpdir(), 'uffd-batch-'));
    try {
      const log = join(dir, 'strace.log');
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && k !== 'NODE_OPTIONS'));
      const s = spawnSync(strace!, ['-f', '-qq', '-s', '0', '-e', 'trace=read', '-o', log, process.execPath, '-e', script], {
        cwd: root, env, encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL',
      });
      const r = { code: s.status, signal: s.signal, stdout: s.stdout ?? '', stderr: s.stderr ?? '', timedOut: s.error !== undefined || s.signal === 'SIGKILL' };
      expect(r.code, describeChild(r)).toBe(0);
      const { fd, faults } = resultOf<{ fd: number; faults: number }>(r);
      expect(faults).toBe(PAGES);
      // "1234 read(17, ""..., 2048) = 256", or split by another thread's call:
      // "1234 read(17,  <unfinished ...>" then "1234 <... read resumed>""..., 2048) = 256".
      const sizes: number[] = [];
      const pending = new Set<string>();
      for (const line of readFileSync(log, 'utf8').split('\n')) {
        const [, pid, rest] = /^(\d+)\s+(.*)$/.exec(line) ?? [];
        if (!pid || !rest) continue;
        if (rest.startsWith(`read(${fd}, `) && rest.includes('<unfinished ...>')) pending.add(pid);
        const whole = rest.startsWith(`read(${fd}, `) || (rest.startsWith('<... read resumed>') && pending.delete(pid));
        // The reader asks for 64 messages (2048 bytes); other reads of a file that had this fd number earlier do not.
        const n = whole ? /, 2048\)\s+=\s+(\d+)/.exec(rest)?.[1] : undefined;
        if (n !== undefined && Number(n) > 0) sizes.push(Number(n));
      }
      expect(sizes.every((n) => n % 32 === 0), String(sizes)).toBe(true);
      const fdLines = readFileSync(log, 'utf8').split('\n').filter((l) => l.includes(`read(${fd},`) || l.includes('read resumed'));
      expect(sizes.reduce((a, b) => a + b, 0), `${sizes}\n${fdLines.join('\n')}`).toBe(PAGES * 32);
      expect(Math.max(...sizes), String(sizes)).toBeGreaterThan(32);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
