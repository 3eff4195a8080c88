// Parity cases skip with the doctor's own reason, decided by the same probe:
// under an LD_PRELOAD shim that hides UFFD_FEATURE_MINOR_SHMEM from the real
// UFFDIO_API answer (a kernel without it), the doctor's shmem × MINOR cell
// and the `minor shmem` parity case must give the same reason, and the
// hugetlb case (MINOR_HUGETLBFS still there) must still run and pass.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIST, describeChild, fixtures, root } from './helpers/child';

const MINOR_SHMEM_BIT = 1 << 10;

// Needs what the parity suite needs to run `minor hugetlb` here (root).
const skip = process.getuid?.() !== 0 ? 'needs root, as the parity cases it runs' : undefined;

describe.skipIf(skip !== undefined)(`parity skip reasons come from the doctor probe${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let dir = '';
  let env: NodeJS.ProcessEnv = {};
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'uffd-skip-'));
    const shim = join(dir, 'shim.so');
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', shim, join(fixtures, 'uffd-api-shim.c'), '-ldl']);
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && k !== 'NODE_OPTIONS'));
    env = { ...base, LD_PRELOAD: shim, HIDE_UFFD_FEATURES: String(MINOR_SHMEM_BIT) };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a kernel without MINOR_SHMEM: the doctor and `minor shmem` give the same reason; `minor hugetlb` still passes', () => {
    const doctor = JSON.parse(execFileSync(process.execPath, [join(DIST, 'cli.js'), 'doctor', '--json'], { env, encoding: 'utf8', timeout: 60_000 })) as {
      supportedFeatures: string[];
      matrix: Record<string, Record<string, { ok: boolean; reason?: string }>>;
    };
    expect(doctor.supportedFeatures).not.toContain('MINOR_SHMEM');
    expect(doctor.matrix.shmem!.minor).toEqual({ ok: false, reason: 'the kernel lacks UFFD_FEATURE_MINOR_SHMEM' });
    expect(doctor.matrix['hugetlb-2M']!.minor).toEqual({ ok: true });

    const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
    const s = spawnSync(process.execPath, [vitest, 'run', 'test/parity/minor.test.ts', '--reporter=verbose'], { cwd: root, env, encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL' });
    const r = { code: s.status, signal: s.signal, stdout: s.stdout ?? '', stderr: s.stderr ?? '', timedOut: s.error !== undefined || s.signal === 'SIGKILL' };
    expect(r.code, describeChild(r)).toBe(0);
    const out = r.stdout.replace(/\x1b\[[0-9;]*m/g, '');
    const skipped = out.split('\n').filter((l) => l.includes('minor shmem') && l.includes(`[skip: ${doctor.matrix.shmem!.minor.reason}]`));
    expect(skipped, out).toHaveLength(1);
    expect(out).toMatch(/✓ .*minor hugetlb/);
    expect(out).toMatch(/Tests\s+1 passed \| 1 skipped \(2\)/);
  });
});
