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
  console.log('START'); // marks where reads of uffd.fd begin in the trace
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
      const s = spawnSync(strace!, ['-f', '-qq', '-s', '8', '-e', 'trace=read,write', '-o', log, process.execPath, '-e', script], {
        cwd: root, env, encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL',
      });
      const r = { code: s.status, signal: s.signal, stdout: s.stdout ?? '', stderr: s.stderr ?? '', timedOut: s.error !== undefined || s.signal === 'SIGKILL' };
      expect(r.code, describeChild(r)).toBe(0);
      const { fd, faults } = resultOf<{ fd: number; faults: number }>(r);
      expect(faults).toBe(PAGES);
      // "read(17, "..."..., 2048) = 256": the byte counts of the reads of the uffd that returned
      // data, between the START and RESULT lines the script writes (outside them the fd number
      // may belong to another file).
      const lines = readFileSync(log, 'utf8').split('\n');
      const start = lines.findIndex((l) => l.includes('write(1, "START'));
      const end = lines.findIndex((l) => l.includes('write(1, "RESULT'));
      expect(start >= 0 && end > start, 'START and RESULT writes traced').toBe(true);
      // With several threads a read can be split: "123 read(17,  <unfinished ...>" then
      // "123 <... read resumed>"..."..., 2048) = 256".
      const pending = new Set<string>();
      const sizes: number[] = [];
      for (const l of lines.slice(start, end)) {
        const pid = /^(\d+)\s/.exec(l)?.[1] ?? '';
        if (new RegExp(`read\\(${fd}, .*<unfinished`).test(l)) pending.add(pid);
        const whole = new RegExp(`read\\(${fd}, .*\\)\\s+=\\s+(\\d+)`).exec(l);
        const resumed = pending.has(pid) ? /<\.\.\. read resumed>.*\)\s+=\s+(\d+)/.exec(l) : null;
        if (resumed) pending.delete(pid);
        const n = Number((whole ?? resumed)?.[1] ?? 0);
        if (n > 0) sizes.push(n);
      }
      expect(sizes.every((n) => n % 32 === 0), String(sizes)).toBe(true);
      expect(sizes.reduce((a, b) => a + b, 0), String(sizes)).toBe(PAGES * 32);
      expect(Math.max(...sizes), String(sizes)).toBeGreaterThan(32);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
