// Userfaultfd.open() when one way to open fails, and when the kernel answers
// like another kernel. The failures are real: strace fault injection makes
// open("/dev/userfaultfd") or userfaultfd(2) fail, a mount namespace puts
// /dev/null at /dev/userfaultfd (open works, USERFAULTFD_IOC_NEW fails), and
// an LD_PRELOAD shim (test/fixtures/uffd-api-shim.c) edits the kernel's
// UFFDIO_API/UFFDIO_REGISTER answers: a kernel without a feature (this 6.18
// kernel has them all) and one with ioctls this version does not know.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIST, describeChild, fixtures, resultOf, root, type ChildResult } from './helpers/child';

const strace = ['/usr/bin/strace', '/bin/strace'].find((p) => existsSync(p));
const unshare = ['/usr/bin/unshare', '/bin/unshare'].find((p) => existsSync(p));
const isRoot = process.getuid?.() === 0;

// Opens with each `via`, reports how (or the error), and resolves one real
// fault on the uffd opened with 'auto'.
const probeScript = `
const lib = require(${JSON.stringify(join(DIST, 'index.js'))});
const testing = require(${JSON.stringify(join(DIST, 'testing', 'index.js'))});
const errOf = (e) => ({ code: e.code, syscall: e.syscall, device: e.deviceError ? { code: e.deviceError.code, syscall: e.deviceError.syscall } : undefined });
(async () => {
  const out = {};
  for (const via of ['device', 'syscall', 'auto']) {
    try { const u = lib.Userfaultfd.open({ via }); out[via] = u.openedVia; u.close(); } catch (e) { out[via] = errOf(e); }
  }
  try {
    const uffd = lib.Userfaultfd.open();
    const m = lib.Mapping.anonymous(lib.PAGE_SIZE);
    uffd.register(m, ['missing']);
    const touch = testing.touchPages(m.address, m.length);
    for await (const e of uffd.events()) {
      const page = Buffer.alloc(lib.PAGE_SIZE);
      page.writeUInt32LE(0xfeed, 0);
      uffd.copy(e.address, page);
      break;
    }
    out.fault = Array.from((await touch).values);
    uffd.close();
  } catch (e) { out.fault = errOf(e); }
  console.log('RESULT ' + JSON.stringify(out));
})();`;

function run(prefix: string[], env: Record<string, string> = {}, script = probeScript): ChildResult {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && k !== 'NODE_OPTIONS'));
  const [cmd, ...args] = [...prefix, process.execPath, '-e', script];
  const r = spawnSync(cmd!, args, { cwd: root, env: { ...base, ...env }, encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' });
  return { code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', timedOut: r.error !== undefined || r.signal === 'SIGKILL' };
}
const injectOpenDevice = ['-f', '-qq', '-o', '/dev/null', '-P', '/dev/userfaultfd', '-e', 'trace=openat', '-e', 'inject=openat:error=EACCES'];
const injectSyscall = (errno: string) => ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=userfaultfd', '-e', `inject=userfaultfd:error=${errno}`];
// In a private mount namespace /dev/userfaultfd is /dev/null: open() works, the ioctl fails.
const deviceIsDevNull = (inner: string[]) => [unshare!, '-m', '/bin/sh', '-c', 'mount --bind /dev/null /dev/userfaultfd && exec "$@"', 'sh', ...inner];

describe('open falls back from /dev/userfaultfd to the syscall on any failure', () => {
  it('open("/dev/userfaultfd") fails (EACCES): auto opens through the syscall and resolves a fault; via device throws', (ctx) => {
    if (!strace) ctx.skip('skip: strace is not installed (apt-get install strace)');
    const r = run([strace!, ...injectOpenDevice]);
    expect(r.code, describeChild(r)).toBe(0);
    expect(resultOf(r)).toEqual({
      device: { code: 'EACCES', syscall: 'open' },
      syscall: 'syscall',
      auto: 'syscall',
      fault: [0xfeed],
    });
  });

  it('USERFAULTFD_IOC_NEW fails (the node is not the device: ENOTTY): auto opens through the syscall', (ctx) => {
    if (!unshare || !isRoot) ctx.skip('skip: needs root and unshare(1) for a private mount namespace');
    const r = run(deviceIsDevNull([]));
    expect(r.code, describeChild(r)).toBe(0);
    expect(resultOf(r)).toEqual({
      device: { code: 'ENOTTY', syscall: 'ioctl(USERFAULTFD_IOC_NEW)' },
      syscall: 'syscall',
      auto: 'syscall',
      fault: [0xfeed],
    });
  });

  it('userfaultfd(2) fails (ENOSYS, as under a seccomp filter): auto still opens through the device', (ctx) => {
    if (!strace) ctx.skip('skip: strace is not installed (apt-get install strace)');
    const r = run([strace!, ...injectSyscall('ENOSYS')]);
    expect(r.code, describeChild(r)).toBe(0);
    expect(resultOf(r)).toEqual({ device: 'device', syscall: { code: 'ENOSYS', syscall: 'userfaultfd' }, auto: 'device', fault: [0xfeed] });
  });

  it('both fail: the syscall error is thrown, with the device error as deviceError', (ctx) => {
    if (!strace || !unshare || !isRoot) ctx.skip('skip: needs root, strace and unshare(1)');
    const r = run(deviceIsDevNull([strace!, ...injectSyscall('EPERM')]));
    expect(r.code, describeChild(r)).toBe(0);
    const both = { code: 'EPERM', syscall: 'userfaultfd', device: { code: 'ENOTTY', syscall: 'ioctl(USERFAULTFD_IOC_NEW)' } };
    expect(resultOf(r)).toEqual({
      device: { code: 'ENOTTY', syscall: 'ioctl(USERFAULTFD_IOC_NEW)' },
      syscall: { code: 'EPERM', syscall: 'userfaultfd' },
      auto: both,
      fault: both,
    });
  });
});

describe('a kernel that answers differently (LD_PRELOAD shim over the real answers)', () => {
  let dir = '';
  let shim = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'uffd-shim-'));
    shim = join(dir, 'shim.so');
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', shim, join(fixtures, 'uffd-api-shim.c'), '-ldl']);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a feature the kernel lacks: ERR_UFFD_FEATURE_UNSUPPORTED naming it; supportedFeatures leaves it out; others still open', () => {
    const script = `
      const lib = require(${JSON.stringify(join(DIST, 'index.js'))});
      const out = {};
      try { lib.Userfaultfd.open({ features: ['MINOR_SHMEM', 'MOVE', 'POISON'] }); } catch (e) { out.error = { name: e.name, code: e.code, message: e.message, features: e.features }; }
      const u = lib.Userfaultfd.open({ features: ['MINOR_SHMEM'] });
      out.supportsMove = u.supportedFeatures.has('MOVE');
      out.supportsPoison = u.supportedFeatures.has('POISON');
      out.enabled = [...u.enabledFeatures].sort();
      u.close();
      console.log('RESULT ' + JSON.stringify(out));`;
    const r = run([], { LD_PRELOAD: shim, HIDE_UFFD_FEATURES: String((1 << 16) | (1 << 14)) }, script);
    expect(r.code, describeChild(r)).toBe(0);
    expect(resultOf(r)).toEqual({
      error: {
        name: 'Error',
        code: 'ERR_UFFD_FEATURE_UNSUPPORTED',
        message: 'userfaultfd: the kernel does not support UFFD_FEATURE_MOVE, UFFD_FEATURE_POISON',
        features: ['MOVE', 'POISON'],
      },
      supportsMove: false,
      supportsPoison: false,
      enabled: ['MINOR_SHMEM', 'THREAD_ID'],
    });
  });

  it('ioctl bits this version does not know are kept as bit<N> (fd and range) and the range still works', () => {
    const r = run([], { LD_PRELOAD: shim, ADD_UFFD_IOCTL_BITS: String(2 ** 50 + 2 ** 61) }, probeScript.replace("uffd.register(m, ['missing']);", "console.log('REGISTERED ' + JSON.stringify([...uffd.register(m, ['missing'])]) + ' ' + JSON.stringify([...uffd.ioctls]));"));
    expect(r.code, describeChild(r)).toBe(0);
    expect(resultOf<{ fault: number[] }>(r).fault).toEqual([0xfeed]);
    const line = r.stdout.split('\n').find((l) => l.startsWith('REGISTERED '));
    const [range, fd] = line!.slice('REGISTERED '.length).split(' ').map((s) => JSON.parse(s) as string[]);
    expect(range).toEqual(expect.arrayContaining(['COPY', 'WAKE', 'ZEROPAGE', 'bit50', 'bit61']));
    expect(fd).toEqual(expect.arrayContaining(['API', 'REGISTER', 'UNREGISTER', 'bit50', 'bit61']));
  });
});
