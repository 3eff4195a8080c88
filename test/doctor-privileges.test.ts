// The doctor's "how can a uffd be opened here, and why not" for users other
// than root: the same machine seen by an unprivileged uid (setpriv), with and
// without CAP_SYS_PTRACE. Needs root to switch users.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FEATURES, probeSupport } from '../lib';
import { DIST, root } from './helpers/child';

const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
const cli = join(DIST, 'cli.js');
const sysctl = Number(readFileSync('/proc/sys/vm/unprivileged_userfaultfd', 'utf8').trim());
const skip = process.getuid?.() !== 0 || !setpriv ? 'needs root and setpriv(1) to run the doctor as another user' : sysctl !== 0 ? `vm.unprivileged_userfaultfd is ${sysctl}, not 0` : undefined;

function doctorAs(extra: string[]): { text: string; json: ReturnType<typeof probeSupport> } {
  const run = (args: string[]) => {
    const r = spawnSync(setpriv!, ['--reuid=65534', '--regid=65534', '--clear-groups', ...extra, process.execPath, cli, 'doctor', ...args], {
      encoding: 'utf8',
      timeout: 60_000,
      killSignal: 'SIGKILL',
    });
    if (r.status !== 0) throw new Error(`doctor as uid 65534 failed: ${r.status} ${r.signal}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  return { text: run([]), json: JSON.parse(run(['--json'])) as ReturnType<typeof probeSupport> };
}

describe.skipIf(skip !== undefined)(`doctor as an unprivileged user${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('no CAP_SYS_PTRACE, sysctl 0, device 0600 root: device and syscall say why not; USER_MODE_ONLY works and the features are still reported', () => {
    const { text, json } = doctorAs([]);
    expect(json.euid).toBe(65534);
    expect(json.capSysPtrace).toBe(false);
    expect(json.unprivilegedUserfaultfd).toBe(0);
    expect(json.device).toMatchObject({ exists: true, accessible: false });
    expect(json.open.device).toMatchObject({ ok: false, code: 'EACCES', reason: expect.stringMatching(/no permission on \/dev\/userfaultfd \(mode 0\d+ uid 0\)/) });
    expect(json.open.syscall).toMatchObject({ ok: false, code: 'EPERM', reason: expect.stringMatching(/not root nor CAP_SYS_PTRACE and vm\.unprivileged_userfaultfd = 0: use \/dev\/userfaultfd or userModeOnly/) });
    expect(json.open.syscallUserModeOnly).toEqual({ ok: true });
    // The kernel's features, read through the USER_MODE_ONLY fd (this used to say "none").
    expect(json.supportedFeatures).toEqual(probeSupport().supportedFeatures);
    expect(json.supportedFeatures).toEqual(expect.arrayContaining([...FEATURES]));
    expect(json.matrix.anon.missing).toEqual({ ok: true });
    expect(json.matrix.shmem.minor).toEqual({ ok: true });
    expect(text).toMatch(/^user\s+euid 65534; CAP_SYS_PTRACE no; vm\.unprivileged_userfaultfd 0$/m);
    expect(text).toMatch(/^\s+syscall, USER_MODE_ONLY yes$/m);
  });

  it('with CAP_SYS_PTRACE the syscall works for the same user', () => {
    const { json } = doctorAs(['--inh-caps=+sys_ptrace', '--ambient-caps=+sys_ptrace']);
    expect(json.euid).toBe(65534);
    expect(json.capSysPtrace).toBe(true);
    expect(json.open.device).toMatchObject({ ok: false, code: 'EACCES' });
    expect(json.open.syscall).toEqual({ ok: true });
  });

  // The parity suite, run by the same user: it skips with the doctor's reasons
  // (it used to fail with EPERM), and runs once CAP_SYS_PTRACE is there.
  function parityAs(extra: string[]): string {
    const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && k !== 'NODE_OPTIONS'));
    const r = spawnSync(
      setpriv!,
      ['--reuid=65534', '--regid=65534', '--clear-groups', ...extra, process.execPath, vitest, 'run', 'test/parity/zeropage.test.ts', 'test/parity/events.test.ts', '--configLoader', 'runner', '--reporter=verbose'],
      { cwd: root, env: { ...env, HOME: tmpdir() }, encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL' },
    );
    const out = (r.stdout ?? '').replace(/\x1b\[[0-9;]*m/g, '');
    if (r.status !== 0) throw new Error(`parity as uid 65534: ${r.status} ${r.signal}\n${out}\n${r.stderr}`);
    return out;
  }

  it('parity cases run by that user skip with the doctor\'s reasons; with CAP_SYS_PTRACE they run and pass', () => {
    const { json } = doctorAs([]);
    const without = parityAs([]);
    const reason = `skip: no userfaultfd for this user but a USER_MODE_ONLY one (device: ${json.open.device.reason}; syscall: ${json.open.syscall.reason})`;
    expect(without.split('\n').filter((l) => l.includes(`[${reason}]`)), without).toHaveLength(10);
    expect(without).toMatch(/Tests\s+10 skipped \(10\)/);
    const withCap = parityAs(['--inh-caps=+sys_ptrace', '--ambient-caps=+sys_ptrace']);
    expect(withCap, withCap).toMatch(/Tests\s+10 passed \(10\)/);
  });
  it('EVENT_FORK without CAP_SYS_PTRACE: an EPERM error that names the feature and the capability', () => {
    const script = `
const { Userfaultfd } = require(${JSON.stringify(join(DIST, 'index.js'))});
try { Userfaultfd.open({ userModeOnly: true, features: ['EVENT_FORK'] }); console.log('opened'); }
catch (e) { console.log(JSON.stringify({ code: e.code, errno: e.errno, syscall: e.syscall, message: e.message })); }`;
    const r = spawnSync(setpriv!, ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], {
      encoding: 'utf8',
      timeout: 60_000,
      killSignal: 'SIGKILL',
    });
    expect(r.status, r.stderr).toBe(0);
    const err = JSON.parse(r.stdout.trim()) as { code: string; errno: number; syscall: string; message: string };
    expect(err).toMatchObject({ code: 'EPERM', errno: -1 });
    expect(err.message).toMatch(/UFFD_FEATURE_EVENT_FORK needs CAP_SYS_PTRACE/);
  });
});
