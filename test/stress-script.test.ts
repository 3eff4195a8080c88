// `npm run stress -- <memory type> <MiB> <bounces>` (scripts/stress.mjs): a
// short run of the real command per memory type, and its usage error.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeChild, root } from './helpers/child';
import { hugetlbSkipReason } from './helpers/hugepages';

function stress(args: string[]) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && k !== 'NODE_OPTIONS'));
  const s = spawnSync(process.execPath, [join(root, 'scripts', 'stress.mjs'), ...args], { cwd: root, env, encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL' });
  return { code: s.status, signal: s.signal, stdout: s.stdout ?? '', stderr: s.stderr ?? '', timedOut: s.error !== undefined || s.signal === 'SIGKILL' };
}

describe('npm run stress', () => {
  const hugeSkip = hugetlbSkipReason(8);
  const cases: [string, string[], string | undefined][] = [
    ['anon', ['anon', '4', '2'], undefined],
    ['shmem --wp', ['shmem', '4', '2', '--wp'], undefined],
    ['hugetlb', ['hugetlb', '4', '2'], hugeSkip],
  ];
  for (const [name, args, skip] of cases) {
    it.skipIf(skip !== undefined)(`${name}: every bounce verified, exit 0${skip ? ` (skipped: ${skip})` : ''}`, () => {
      const r = stress(args);
      expect(r.code, describeChild(r)).toBe(0);
      const bounces = r.stdout.split('\n').filter((l) => l.startsWith('bounce '));
      expect(bounces, describeChild(r)).toHaveLength(2);
      for (const b of bounces) expect(b).toMatch(/ verified$/);
      expect(r.stdout).toMatch(/all verified/);
      if (args.includes('--wp')) expect(r.stdout).not.toMatch(/wp\s+0 /);
    });
  }

  it('a bad memory type prints the usage and exits 2', () => {
    const r = stress(['bogus', '4', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/memory type must be one of anon, shmem, hugetlb/);
    expect(r.stderr).toMatch(/usage: npm run stress -- <anon\|shmem\|hugetlb> <MiB> <bounces>/);
  });
});
